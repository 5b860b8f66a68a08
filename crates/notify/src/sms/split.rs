//! From text to the short_message octets of one or more submit_sm: the
//! alphabet, the single/concatenated limits, the UDH, and shortening when
//! even the allowed number of parts is not enough.

use serde::Deserialize;

use super::gsm;

/// data_coding of the SMSC default alphabet, which SMPP 3.4 SMSCs take as
/// GSM 7-bit, one septet per octet.
pub const DC_DEFAULT: u8 = 0x00;
/// data_coding of UCS-2 (UTF-16BE on the wire).
pub const DC_UCS2: u8 = 0x08;
/// esm_class bit saying short_message starts with a user data header.
pub const ESM_UDHI: u8 = 0x40;

/// Which alphabet the text goes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataCoding {
    /// GSM 7-bit when every character is in the default alphabet or its
    /// extension table (160 characters per SMS), else UCS-2 (70).
    #[default]
    Auto,
    /// Always UCS-2: for SMSCs that mistranslate data_coding 0.
    Ucs2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alphabet {
    Gsm,
    Ucs2,
}

impl Alphabet {
    /// Units (septets or UTF-16 code units) of one SMS without and with a
    /// concatenation UDH (6 octets: 7 septets with fill bits, 3 code units).
    fn limits(self) -> (usize, usize) {
        match self {
            Alphabet::Gsm => (160, 153),
            Alphabet::Ucs2 => (70, 67),
        }
    }

    fn cost(self, c: char) -> usize {
        match self {
            Alphabet::Gsm => gsm::septets(c).map_or(1, gsm::Septets::count),
            Alphabet::Ucs2 => c.len_utf16(),
        }
    }

    fn ellipsis(self) -> &'static str {
        match self {
            // "…" is not in the GSM alphabet; one of it would turn the whole
            // message into UCS-2 and halve its room.
            Alphabet::Gsm => "...",
            Alphabet::Ucs2 => "…",
        }
    }

    fn data_coding(self) -> u8 {
        match self {
            Alphabet::Gsm => DC_DEFAULT,
            Alphabet::Ucs2 => DC_UCS2,
        }
    }

    fn encode(self, text: &str, out: &mut Vec<u8>) {
        match self {
            Alphabet::Gsm => {
                for c in text.chars() {
                    // Auto only picks GSM when every character fits; a
                    // stray one becomes '?' rather than a dropped message.
                    gsm::septets(c)
                        .unwrap_or(gsm::Septets::One(0x3F))
                        .push_to(out);
                }
            }
            Alphabet::Ucs2 => {
                for u in text.encode_utf16() {
                    out.extend_from_slice(&u.to_be_bytes());
                }
            }
        }
    }
}

/// The short messages one text becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub data_coding: u8,
    /// [`ESM_UDHI`] when the text was split, else 0.
    pub esm_class: u8,
    /// short_message of each submit_sm, UDH included.
    pub parts: Vec<Vec<u8>>,
    /// Whether the text was shortened to fit `max_parts`.
    pub truncated: bool,
}

/// Encodes `text` as one SMS when it fits, else as up to `max_parts`
/// concatenated parts sharing `reference`, shortened with an ellipsis when
/// even those are not enough. Characters are never split: a GSM extension
/// character (ESC + septet) or a UTF-16 surrogate pair stays in one part.
pub fn encode_text(text: &str, coding: DataCoding, max_parts: u8, reference: u8) -> Encoded {
    let alphabet = match coding {
        DataCoding::Auto if gsm::septet_count(text).is_some() => Alphabet::Gsm,
        _ => Alphabet::Ucs2,
    };
    let max_parts = usize::from(max_parts.max(1));
    let (single, per_part) = alphabet.limits();
    let capacity = |s: &str| {
        if max_parts == 1 {
            if cost(alphabet, s) <= single {
                1
            } else {
                usize::MAX
            }
        } else {
            part_count(alphabet, s, single, per_part)
        }
    };

    let (text, truncated) = if capacity(text) <= max_parts {
        (text.to_string(), false)
    } else {
        (shorten(text, alphabet, |s| capacity(s) <= max_parts), true)
    };

    let mut parts = Vec::new();
    if cost(alphabet, &text) <= single {
        let mut sm = Vec::with_capacity(single * 2);
        alphabet.encode(&text, &mut sm);
        parts.push(sm);
    } else {
        let chunks = pack(alphabet, &text, per_part);
        let total = chunks.len() as u8;
        for (i, chunk) in chunks.iter().enumerate() {
            // Concatenated SMS, 8-bit reference (3GPP TS 23.040 9.2.3.24.1).
            let mut sm = vec![0x05, 0x00, 0x03, reference, total, i as u8 + 1];
            alphabet.encode(chunk, &mut sm);
            parts.push(sm);
        }
    }
    Encoded {
        data_coding: alphabet.data_coding(),
        esm_class: if parts.len() > 1 { ESM_UDHI } else { 0 },
        parts,
        truncated,
    }
}

fn cost(alphabet: Alphabet, s: &str) -> usize {
    s.chars().map(|c| alphabet.cost(c)).sum()
}

fn part_count(alphabet: Alphabet, s: &str, single: usize, per_part: usize) -> usize {
    if cost(alphabet, s) <= single {
        1
    } else {
        pack(alphabet, s, per_part).len()
    }
}

/// Greedy split into parts of at most `cap` units each.
fn pack(alphabet: Alphabet, s: &str, cap: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, c) in s.char_indices() {
        let n = alphabet.cost(c);
        if used + n > cap {
            parts.push(&s[start..i]);
            start = i;
            used = 0;
        }
        used += n;
    }
    if start < s.len() || parts.is_empty() {
        parts.push(&s[start..]);
    }
    parts
}

/// The longest prefix of `text` that, with an ellipsis, still `fits`. The
/// part count grows with the prefix, so a binary search over character
/// boundaries finds it.
fn shorten(text: &str, alphabet: Alphabet, fits: impl Fn(&str) -> bool) -> String {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let candidate = |k: usize| {
        let end = bounds.get(k).copied().unwrap_or(text.len());
        let mut s = text[..end].trim_end().to_string();
        s.push_str(alphabet.ellipsis());
        s
    };
    let (mut lo, mut hi) = (0, bounds.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(&candidate(mid)) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    candidate(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udh(e: &Encoded, i: usize) -> &[u8] {
        &e.parts[i][..6]
    }

    #[test]
    fn single_gsm_up_to_160() {
        let e = encode_text(&"a".repeat(160), DataCoding::Auto, 6, 9);
        assert_eq!(e.parts.len(), 1);
        assert_eq!(e.parts[0].len(), 160);
        assert_eq!((e.data_coding, e.esm_class, e.truncated), (0, 0, false));
    }

    #[test]
    fn gsm_161_splits_153_plus_8() {
        let e = encode_text(&"a".repeat(161), DataCoding::Auto, 6, 9);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.esm_class, ESM_UDHI);
        assert_eq!(udh(&e, 0), [5, 0, 3, 9, 2, 1]);
        assert_eq!(udh(&e, 1), [5, 0, 3, 9, 2, 2]);
        assert_eq!(e.parts[0].len(), 6 + 153);
        assert_eq!(e.parts[1].len(), 6 + 8);
    }

    #[test]
    fn extension_chars_cost_two_septets() {
        // 80 euro signs are 160 septets: one SMS.
        let e = encode_text(&"€".repeat(80), DataCoding::Auto, 6, 1);
        assert_eq!(e.parts.len(), 1);
        assert_eq!(e.parts[0].len(), 160);
        // 81 are 162: split, and no part ends between ESC and its septet.
        let e = encode_text(&"€".repeat(81), DataCoding::Auto, 6, 1);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].len(), 6 + 152, "76 euros, not 76.5");
        assert_eq!(e.parts[1].len(), 6 + 10);
        assert_eq!(e.parts[0][6..8], [0x1B, 0x65]);
        assert_eq!(*e.parts[0].last().unwrap(), 0x65);
    }

    #[test]
    fn ucs2_limits_70_and_67() {
        let e = encode_text(&"я".repeat(70), DataCoding::Auto, 6, 1);
        assert_eq!((e.parts.len(), e.data_coding), (1, DC_UCS2));
        assert_eq!(e.parts[0].len(), 140);
        assert_eq!(e.parts[0][..2], [0x04, 0x4F]);
        let e = encode_text(&"я".repeat(71), DataCoding::Auto, 6, 1);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].len(), 6 + 134);
        assert_eq!(e.parts[1].len(), 6 + 8);
    }

    #[test]
    fn surrogate_pairs_stay_together() {
        // 66 'x' then an emoji (2 code units) does not fit part one's 67.
        let text = format!("{}😀{}", "x".repeat(66), "y".repeat(10));
        let e = encode_text(&text, DataCoding::Auto, 6, 1);
        assert_eq!(e.parts[0].len(), 6 + 66 * 2);
        assert_eq!(e.parts[1][6..10], [0xD8, 0x3D, 0xDE, 0x00]);
    }

    #[test]
    fn forced_ucs2() {
        let e = encode_text("Hi", DataCoding::Ucs2, 6, 1);
        assert_eq!(e.parts, vec![vec![0, b'H', 0, b'i']]);
        assert_eq!(e.data_coding, DC_UCS2);
    }

    #[test]
    fn too_long_is_shortened_with_ellipsis() {
        let text = "word ".repeat(400); // 2000 septets
        let e = encode_text(&text, DataCoding::Auto, 3, 4);
        assert!(e.truncated);
        assert_eq!(e.parts.len(), 3);
        assert!(e.parts.iter().all(|p| p.len() <= 6 + 153));
        let last = e.parts.last().unwrap();
        assert!(last.ends_with(b"..."), "{:?}", gsm::decode(last));
        let total: usize = e.parts.iter().map(|p| p.len() - 6).sum();
        assert!(total > 3 * 153 - 8, "uses the room: {total}");

        let e = encode_text(&"ж".repeat(500), DataCoding::Auto, 2, 4);
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[1].len(), 6 + 134);
        assert_eq!(e.parts[1][6 + 132..], [0x20, 0x26], "ends with …");
    }

    #[test]
    fn one_part_maximum_truncates_without_udh() {
        let e = encode_text(&"b".repeat(300), DataCoding::Auto, 1, 4);
        assert_eq!(e.parts.len(), 1);
        assert_eq!(e.esm_class, 0);
        assert_eq!(e.parts[0].len(), 160);
        assert!(e.parts[0].ends_with(b"bbb..."));
        let e = encode_text(&"b".repeat(300), DataCoding::Auto, 0, 4);
        assert_eq!(e.parts.len(), 1, "0 means 1");
    }

    #[test]
    fn empty_text_is_one_empty_sms() {
        let e = encode_text("", DataCoding::Auto, 6, 0);
        assert_eq!(e.parts, vec![Vec::<u8>::new()]);
    }
}
