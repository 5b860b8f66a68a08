//! RFC 5176 §3.5 Error-Cause values, carried in Disconnect/CoA-NAK (and -ACK for 201).

#![allow(missing_docs)]

pub const RESIDUAL_SESSION_CONTEXT_REMOVED: u32 = 201;
pub const INVALID_EAP_PACKET: u32 = 202;
pub const UNSUPPORTED_ATTRIBUTE: u32 = 401;
pub const MISSING_ATTRIBUTE: u32 = 402;
pub const NAS_IDENTIFICATION_MISMATCH: u32 = 403;
pub const INVALID_REQUEST: u32 = 404;
pub const UNSUPPORTED_SERVICE: u32 = 405;
pub const UNSUPPORTED_EXTENSION: u32 = 406;
pub const INVALID_ATTRIBUTE_VALUE: u32 = 407;
pub const ADMINISTRATIVELY_PROHIBITED: u32 = 501;
pub const REQUEST_NOT_ROUTABLE: u32 = 502;
pub const SESSION_CONTEXT_NOT_FOUND: u32 = 503;
pub const SESSION_CONTEXT_NOT_REMOVABLE: u32 = 504;
pub const OTHER_PROXY_PROCESSING_ERROR: u32 = 505;
pub const RESOURCES_UNAVAILABLE: u32 = 506;
pub const REQUEST_INITIATED: u32 = 507;
pub const MULTIPLE_SESSION_SELECTION_UNSUPPORTED: u32 = 508;

/// The RFC 5176 name of an Error-Cause value, `"unknown"` otherwise.
pub fn error_cause_name(v: u32) -> &'static str {
    match v {
        RESIDUAL_SESSION_CONTEXT_REMOVED => "Residual-Session-Context-Removed",
        INVALID_EAP_PACKET => "Invalid-EAP-Packet",
        UNSUPPORTED_ATTRIBUTE => "Unsupported-Attribute",
        MISSING_ATTRIBUTE => "Missing-Attribute",
        NAS_IDENTIFICATION_MISMATCH => "NAS-Identification-Mismatch",
        INVALID_REQUEST => "Invalid-Request",
        UNSUPPORTED_SERVICE => "Unsupported-Service",
        UNSUPPORTED_EXTENSION => "Unsupported-Extension",
        INVALID_ATTRIBUTE_VALUE => "Invalid-Attribute-Value",
        ADMINISTRATIVELY_PROHIBITED => "Administratively-Prohibited",
        REQUEST_NOT_ROUTABLE => "Request-Not-Routable",
        SESSION_CONTEXT_NOT_FOUND => "Session-Context-Not-Found",
        SESSION_CONTEXT_NOT_REMOVABLE => "Session-Context-Not-Removable",
        OTHER_PROXY_PROCESSING_ERROR => "Other-Proxy-Processing-Error",
        RESOURCES_UNAVAILABLE => "Resources-Unavailable",
        REQUEST_INITIATED => "Request-Initiated",
        MULTIPLE_SESSION_SELECTION_UNSUPPORTED => "Multiple-Session-Selection-Unsupported",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(error_cause_name(201), "Residual-Session-Context-Removed");
        assert_eq!(error_cause_name(503), "Session-Context-Not-Found");
        assert_eq!(
            error_cause_name(508),
            "Multiple-Session-Selection-Unsupported"
        );
        assert_eq!(error_cause_name(209), "unknown");
    }
}
