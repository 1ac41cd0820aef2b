//! Pictures: sequence diagrams of schedules ([`sequence`]) and the HTML
//! report of a check ([`report`]). Both are self-contained files that
//! need nothing but a browser (no script, no network fetch), written
//! deterministically from a replay or a check's results.

pub mod report;
pub mod sequence;
pub mod timeline;

/// Escapes text for XML (SVG, HTML) content and attribute values, and for
/// Graphviz HTML-like labels. Control characters other than newline and
/// tab, which XML 1.0 does not allow, become `?`.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(esc("x\u{1}y\nz"), "x?y\nz");
    }
}
