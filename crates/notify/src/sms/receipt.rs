//! Delivery receipts: a deliver_sm whose esm_class says so, carrying the
//! SMSC's message id in the receipted_message_id TLV and/or the de-facto
//! standard text (SMPP 3.4 Appendix B):
//! `id:IIII sub:SSS dlvr:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
//! stat:DDDDDDD err:E text:...`.

use super::pdu::{tag, Sm};
use crate::Receipt;

/// esm_class message type bits (2..5): 0x04 SMSC delivery receipt, 0x20
/// intermediate delivery notification. SME acknowledgements (0x08, 0x10)
/// come from the handset's user, not the network, and are not receipts.
pub fn is_receipt(esm_class: u8) -> bool {
    matches!(esm_class & 0x3C, 0x04 | 0x20)
}

/// The receipt in a deliver_sm, or `None` when it names no message id (it
/// could not be matched to anything).
pub fn parse(sm: &Sm) -> Option<Receipt> {
    let body = if sm.short_message.is_empty() {
        sm.tlv(tag::MESSAGE_PAYLOAD).unwrap_or_default()
    } else {
        &sm.short_message
    };
    let text = String::from_utf8_lossy(body);
    let fields = TextFields::parse(&text);

    // The TLV is the SMSC's id verbatim; the text's id is sometimes
    // reformatted (decimal of a hex id), so the TLV wins when both exist.
    let message_id = sm
        .tlv(tag::RECEIPTED_MESSAGE_ID)
        .map(cstring)
        .filter(|s| !s.is_empty())
        .or(fields.id)?;
    let state = fields
        .stat
        .or_else(|| {
            sm.tlv(tag::MESSAGE_STATE)
                .and_then(|v| v.first())
                .map(|&s| state_name(s).to_string())
        })
        .unwrap_or_else(|| "UNKNOWN".to_string());
    let error = fields.err.or_else(|| {
        sm.tlv(tag::NETWORK_ERROR_CODE)
            .filter(|v| v.len() == 3)
            .map(|v| format!("network {}:{}", v[0], u16::from_be_bytes([v[1], v[2]])))
    });
    Some(Receipt {
        message_id,
        state,
        error,
    })
}

#[derive(Default)]
struct TextFields {
    id: Option<String>,
    stat: Option<String>,
    err: Option<String>,
}

impl TextFields {
    fn parse(text: &str) -> TextFields {
        // Everything after `text:` is the start of the original message,
        // which may itself contain "id:" or "stat:".
        let head = match text.to_ascii_lowercase().find("text:") {
            Some(i) => &text[..i],
            None => text,
        };
        let mut f = TextFields::default();
        for token in head.split_whitespace() {
            let Some((key, value)) = token.split_once(':') else {
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let slot = match key.to_ascii_lowercase().as_str() {
                "id" => &mut f.id,
                "stat" => &mut f.stat,
                "err" => &mut f.err,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.to_string());
        }
        f
    }
}

fn cstring(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// message_state values (SMPP 3.4 5.2.28) in the text form receipts use.
fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::pdu::Tlv;

    fn sm(text: &str, tlvs: Vec<Tlv>) -> Sm {
        Sm {
            esm_class: 0x04,
            short_message: text.as_bytes().to_vec(),
            tlvs,
            ..Sm::default()
        }
    }

    #[test]
    fn esm_class_bits() {
        assert!(is_receipt(0x04));
        assert!(is_receipt(0x44), "with UDHI");
        assert!(is_receipt(0x20));
        assert!(!is_receipt(0x00));
        assert!(!is_receipt(0x08));
        assert!(!is_receipt(0x40));
    }

    #[test]
    fn standard_text() {
        let r = parse(&sm(
            "id:0123456789 sub:001 dlvr:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:id:zzz stat:FAKE",
            vec![],
        ))
        .unwrap();
        assert_eq!(
            r,
            Receipt {
                message_id: "0123456789".into(),
                state: "DELIVRD".into(),
                error: Some("000".into()),
            }
        );
    }

    #[test]
    fn tlv_id_wins_and_state_from_tlv() {
        let r = parse(&sm(
            "id:291 sub:001 dlvr:000 err:069 Text:x",
            vec![
                Tlv {
                    tag: tag::RECEIPTED_MESSAGE_ID,
                    value: b"123\0".to_vec(),
                },
                Tlv {
                    tag: tag::MESSAGE_STATE,
                    value: vec![5],
                },
            ],
        ))
        .unwrap();
        assert_eq!(r.message_id, "123");
        assert_eq!(r.state, "UNDELIV");
        assert_eq!(r.error.as_deref(), Some("069"));
    }

    #[test]
    fn payload_and_network_error() {
        let mut s = sm(
            "",
            vec![
                Tlv {
                    tag: tag::MESSAGE_PAYLOAD,
                    value: b"id:ab stat:EXPIRED".to_vec(),
                },
                Tlv {
                    tag: tag::NETWORK_ERROR_CODE,
                    value: vec![3, 0, 27],
                },
            ],
        );
        let r = parse(&s).unwrap();
        assert_eq!(r.message_id, "ab");
        assert_eq!(r.state, "EXPIRED");
        assert_eq!(r.error.as_deref(), Some("network 3:27"));
        s.tlvs.clear();
        assert_eq!(parse(&s), None, "no id anywhere");
    }
}
