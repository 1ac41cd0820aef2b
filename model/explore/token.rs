//! Replay tokens: a schedule as one short string to paste into
//! `netrace replay`.
//!
//! Form: `VARIANT:CHOICES:SCENARIO:CHECK`, for example
//! `libnetwork-17.05:000001111100:1f2e3d4c:6418a5b4`.
//! - `VARIANT` is the variant's name in the scenario file;
//! - `CHOICES` is the schedule, one character per step: the index of the
//!   chosen action among the enabled ones, in base 62 (`0-9a-zA-Y` for 0 to
//!   60), or `_` followed by three base-62 digits for larger indices;
//! - `SCENARIO` is 8 hex digits of the scenario's content hash
//!   ([`crate::scenario::content_hash`]: its normalised content and the
//!   model version), so a token replayed on an edited scenario, on another
//!   file with the same name, or by a netrace whose model changed, is
//!   refused with a message saying so, instead of replaying another
//!   interleaving;
//! - `CHECK` is 8 hex digits of FNV-1a over the scenario name, the variant,
//!   the choices and `SCENARIO`, so a token mistyped, truncated or pasted
//!   against the wrong scenario is refused.

use std::fmt;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Indices below this take one character.
const SHORT: u32 = 61;

/// A decoded token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The variant it belongs to.
    pub variant: String,
    /// The schedule.
    pub schedule: Vec<u32>,
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not of the form `VARIANT:CHOICES:SCENARIO:CHECK`.
    Shape,
    /// A character outside the alphabet, at this byte offset of the choices.
    BadChoice(usize),
    /// The checksum does not match this scenario.
    Checksum,
    /// The token belongs to this scenario's name but to other content.
    OtherContent {
        /// The content hash the token was made with.
        token: u32,
        /// The content hash of the file given.
        file: u32,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Shape => f.write_str("a token has the form VARIANT:CHOICES:SCENARIO:CHECK"),
            TokenError::BadChoice(at) => write!(
                f,
                "the choices hold an invalid character at position {}",
                at + 1
            ),
            TokenError::Checksum => f.write_str(
                "the checksum does not match: the token is corrupt or belongs to another scenario",
            ),
            TokenError::OtherContent { token, file } => write!(
                f,
                "the token was made from other content of this scenario (content hash {token:08x}; \
                 this file's is {file:08x}): the file was edited since, it is another file with \
                 the same name, or the token comes from another netrace model version (this \
                 one is {})",
                crate::scenario::MODEL_VERSION
            ),
        }
    }
}

impl std::error::Error for TokenError {}

fn checksum(scenario: &str, variant: &str, choices: &str, content: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in ["netrace-token-v2", scenario, variant, choices, content] {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (h ^ (h >> 32)) as u32
}

/// What a token is tied to: the scenario's name and content hash.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The scenario's name.
    pub name: &'a str,
    /// Its content hash ([`crate::scenario::content_hash`]).
    pub content: u32,
}

impl<'a> From<&'a crate::scenario::Scenario> for Scope<'a> {
    fn from(s: &'a crate::scenario::Scenario) -> Scope<'a> {
        Scope {
            name: &s.name,
            content: s.content_hash,
        }
    }
}

/// Encodes a schedule of `variant` in `scenario`.
///
/// # Panics
/// When an index does not fit in three base-62 digits (238,328 enabled
/// actions in one state): no scenario comes near it.
pub fn encode(scope: Scope, variant: &str, schedule: &[u32]) -> String {
    let mut choices = String::with_capacity(schedule.len());
    for &c in schedule {
        if c < SHORT {
            choices.push(ALPHABET[c as usize] as char);
        } else {
            assert!(c < 62 * 62 * 62, "choice index {c} too large for a token");
            choices.push('_');
            choices.push(ALPHABET[(c / (62 * 62)) as usize] as char);
            choices.push(ALPHABET[(c / 62 % 62) as usize] as char);
            choices.push(ALPHABET[(c % 62) as usize] as char);
        }
    }
    let content = format!("{:08x}", scope.content);
    let check = checksum(scope.name, variant, &choices, &content);
    format!("{variant}:{choices}:{content}:{check:08x}")
}

fn digit(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// Decodes a token for `scenario`.
pub fn decode(scope: Scope, token: &str) -> Result<Token, TokenError> {
    let token = token.trim();
    let mut parts = token.rsplitn(4, ':');
    let (Some(check), Some(content), Some(choices), Some(variant)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Shape);
    };
    let hex8 = |x: &str| x.len() == 8 && x.bytes().all(|b| b.is_ascii_hexdigit());
    if variant.is_empty() || !hex8(check) || !hex8(content) {
        return Err(TokenError::Shape);
    }
    let bytes = choices.as_bytes();
    let mut schedule = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let mut v = 0u32;
            for k in 1..=3 {
                let d = bytes
                    .get(i + k)
                    .and_then(|&b| digit(b))
                    .ok_or(TokenError::BadChoice(i + k))?;
                v = v * 62 + d;
            }
            schedule.push(v);
            i += 4;
        } else {
            let d = digit(bytes[i])
                .filter(|&d| d < SHORT)
                .ok_or(TokenError::BadChoice(i))?;
            schedule.push(d);
            i += 1;
        }
    }
    let want = u32::from_str_radix(check, 16).map_err(|_| TokenError::Shape)?;
    if checksum(scope.name, variant, choices, content) != want {
        return Err(TokenError::Checksum);
    }
    let made = u32::from_str_radix(content, 16).map_err(|_| TokenError::Shape)?;
    if made != scope.content {
        return Err(TokenError::OtherContent {
            token: made,
            file: scope.content,
        });
    }
    Ok(Token {
        variant: variant.to_string(),
        schedule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Scope = Scope {
        name: "s",
        content: 0x1234_abcd,
    };

    #[test]
    fn round_trip_small_and_large_indices() {
        let schedule = vec![0, 1, 60, 61, 62, 3843, 200_000, 0];
        let t = encode(S, "libnetwork-17.05", &schedule);
        let d = decode(S, &t).unwrap();
        assert_eq!(d.variant, "libnetwork-17.05");
        assert_eq!(d.schedule, schedule);
    }

    #[test]
    fn empty_schedule_round_trips() {
        let t = encode(S, "v", &[]);
        assert_eq!(decode(S, &t).unwrap().schedule, Vec::<u32>::new());
    }

    #[test]
    fn corruption_is_detected() {
        let t = encode(S, "v", &[0, 1, 2, 3]);
        let other = Scope { name: "other", ..S };
        assert_eq!(decode(other, &t), Err(TokenError::Checksum));
        let flipped = t.replacen("0123", "0132", 1);
        assert_eq!(decode(S, &flipped), Err(TokenError::Checksum));
        assert_eq!(decode(S, "garbage"), Err(TokenError::Shape));
        assert_eq!(
            decode(S, "v:0!:00000000:00000000"),
            Err(TokenError::BadChoice(1))
        );
        assert_eq!(
            decode(S, "v:_0:00000000:00000000"),
            Err(TokenError::BadChoice(2))
        );
        let truncated = &t[..t.len() - 1];
        assert_eq!(decode(S, truncated), Err(TokenError::Shape));
        // The old three-part form is refused by its shape.
        assert_eq!(decode(S, "v:0123:6418a5b4"), Err(TokenError::Shape));
    }

    #[test]
    fn a_token_of_other_content_is_refused_as_such() {
        let t = encode(S, "v", &[0, 1]);
        let edited = Scope {
            content: 0x1234_abce,
            ..S
        };
        assert_eq!(
            decode(edited, &t),
            Err(TokenError::OtherContent {
                token: 0x1234_abcd,
                file: 0x1234_abce
            })
        );
    }
}
