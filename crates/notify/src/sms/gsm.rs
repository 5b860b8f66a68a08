//! The GSM 7-bit default alphabet (3GPP TS 23.038 section 6.2.1) and its
//! extension table, unpacked: SMPP carries one septet per octet with
//! data_coding 0 and the SMSC packs them for the air interface.

/// The basic table, indexed by septet value.
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The escape septet that announces an extension-table character.
pub const ESC: u8 = 0x1B;

/// Extension table characters and the septet following ESC.
const EXTENSION: [(char, u8); 10] = [
    ('\u{0c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// The septets of one character: one for the basic table, ESC plus one for
/// the extension table, `None` outside the alphabet.
pub fn septets(c: char) -> Option<Septets> {
    // ESC itself is not text; a literal 0x1B in a message would swallow the
    // character after it.
    if c == '\u{1b}' {
        return None;
    }
    if let Some(i) = basic_index(c) {
        return Some(Septets::One(i));
    }
    EXTENSION
        .iter()
        .find(|(e, _)| *e == c)
        .map(|&(_, s)| Septets::Two(ESC, s))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Septets {
    One(u8),
    Two(u8, u8),
}

impl Septets {
    pub fn count(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Two(..) => 2,
        }
    }

    pub fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Septets::One(a) => out.push(a),
            Septets::Two(a, b) => out.extend_from_slice(&[a, b]),
        }
    }
}

fn basic_index(c: char) -> Option<u8> {
    // ASCII letters and digits sit at their ASCII code points in the basic
    // table, the common case, so skip the scan for them.
    // ('$' is 0x02 there; 0x24 is '¤'.)
    if c.is_ascii_alphanumeric() || ((' '..='?').contains(&c) && c != '$') {
        return Some(c as u8);
    }
    BASIC.iter().position(|&b| b == c).map(|i| i as u8)
}

/// Septets the whole text needs, or `None` when some character is outside
/// the alphabet (the text then goes as UCS-2).
pub fn septet_count(text: &str) -> Option<usize> {
    text.chars().map(|c| septets(c).map(Septets::count)).sum()
}

/// The text as unpacked septets, or `None` when it does not fit the
/// alphabet.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        septets(c)?.push_to(&mut out);
    }
    Some(out)
}

/// Decodes unpacked septets; unknown escapes and values above 0x7F become
/// a space, as handsets show them.
pub fn decode(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter();
    while let Some(&s) = it.next() {
        if s == ESC {
            let ext = it.next().copied().unwrap_or(0xFF);
            let c = EXTENSION
                .iter()
                .find(|(_, e)| *e == ext)
                .map_or(' ', |&(c, _)| c);
            out.push(c);
        } else {
            out.push(BASIC.get(usize::from(s)).copied().unwrap_or(' '));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_shortcut_agrees_with_table() {
        for c in (0u8..0x80).map(char::from) {
            let fast = basic_index(c);
            let slow = BASIC.iter().position(|&b| b == c).map(|i| i as u8);
            assert_eq!(fast, slow, "{c:?}");
        }
    }

    #[test]
    fn counts_and_extension_chars() {
        assert_eq!(septet_count("Hello"), Some(5));
        assert_eq!(septet_count(""), Some(0));
        assert_eq!(septet_count("€10 [x]"), Some(10));
        assert_eq!(septet_count("{}\\^~|\u{0c}"), Some(14));
        assert_eq!(septet_count("Grüße aus Köln"), Some(14));
        assert_eq!(septet_count("ΔΦΓΛΩΠΨΣΘΞ"), Some(10));
        assert_eq!(septet_count("naïve"), None, "ï is not in the alphabet");
        assert_eq!(septet_count("ok 👍"), None);
        assert_eq!(septet_count("Привет"), None);
        assert_eq!(septet_count("`"), None, "backtick is not GSM");
        assert_eq!(septet_count("\u{1b}"), None);
    }

    #[test]
    fn encode_vectors() {
        assert_eq!(encode("@£$¥").unwrap(), vec![0x00, 0x01, 0x02, 0x03]);
        assert_eq!(encode("A_a").unwrap(), vec![0x41, 0x11, 0x61]);
        assert_eq!(encode("€").unwrap(), vec![0x1B, 0x65]);
        assert_eq!(encode("[1]").unwrap(), vec![0x1B, 0x3C, 0x31, 0x1B, 0x3E]);
        assert_eq!(encode("¿§¡").unwrap(), vec![0x60, 0x5F, 0x40]);
        assert_eq!(encode("é"), Some(vec![0x05]));
        assert_eq!(encode("á"), None);
    }

    #[test]
    fn decode_roundtrip() {
        let text = "[MAJOR] scanning on 901700000000001 {x} €5 \\o/ ~|^ Ünïcode";
        // ï is not GSM; drop it for the roundtrip.
        let text = text.replace('ï', "i");
        assert_eq!(decode(&encode(&text).unwrap()), text);
        assert_eq!(decode(&[0x1B, 0x00, 0x80]), "  ");
    }
}
