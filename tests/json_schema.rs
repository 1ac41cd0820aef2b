//! Every JSON row of `netrace check --format json` over the bundled
//! scenarios matches docs/json-schema.md: the documented fields, in that
//! order, with their types, and nothing else.

use std::process::Command;

fn schema() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json-schema.md"))
        .expect("docs/json-schema.md");
    doc.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").collect();
            let field = cells[0]
                .trim_start_matches("| ")
                .trim_matches('`')
                .to_string();
            let ty = cells[1].replace("\\|", "|");
            (field, ty)
        })
        .collect()
}

fn type_ok(v: &serde_json::Value, ty: &str) -> bool {
    ty.split('|').any(|t| match t {
        "string" => v.is_string(),
        "integer" => v.is_u64() || v.is_i64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        other => panic!("docs/json-schema.md: unknown type {other}"),
    })
}

#[test]
fn every_row_matches_the_documented_schema() {
    let schema = schema();
    assert!(schema.len() >= 20, "the table was read: {schema:?}");
    let o = Command::new(env!("CARGO_BIN_EXE_netrace"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut rows = 0;
    for line in text.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let obj = row.as_object().unwrap();
        let keys: Vec<&String> = obj.keys().collect();
        let documented: Vec<&String> = schema.iter().map(|(f, _)| f).collect();
        assert_eq!(keys, documented, "fields and their order: {line}");
        for (field, ty) in &schema {
            assert!(type_ok(&obj[field], ty), "{field} is not {ty}: {line}");
        }
        assert_eq!(obj["schema_version"], 2);
        if obj["verdict"] == "violated" {
            let c = &obj["counterexample"];
            assert!(c["steps"].is_u64() && c["token"].is_string() && c["message"].is_string());
        }
        rows += 1;
    }
    assert!(rows >= 100, "{rows} rows");
}
