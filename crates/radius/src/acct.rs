//! RFC 2866 §5 value constants.

/// Acct-Status-Type (RFC 2866 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusType {
    /// 1: session start.
    Start,
    /// 2: session stop, carries final counters.
    Stop,
    /// 3: periodic update with running counters.
    InterimUpdate,
    /// 7: the NAS (re)started; every session it had is gone.
    AccountingOn,
    /// 8: the NAS is shutting down accounting.
    AccountingOff,
    /// Any other value (e.g. 9-14 tunnel values, 15 Failed).
    Other(u32),
}

impl StatusType {
    /// Maps a wire value; known values never become [`StatusType::Other`].
    pub fn from_u32(v: u32) -> StatusType {
        match v {
            1 => StatusType::Start,
            2 => StatusType::Stop,
            3 => StatusType::InterimUpdate,
            7 => StatusType::AccountingOn,
            8 => StatusType::AccountingOff,
            other => StatusType::Other(other),
        }
    }

    /// The wire value.
    pub fn as_u32(self) -> u32 {
        match self {
            StatusType::Start => 1,
            StatusType::Stop => 2,
            StatusType::InterimUpdate => 3,
            StatusType::AccountingOn => 7,
            StatusType::AccountingOff => 8,
            StatusType::Other(v) => v,
        }
    }
}

/// Acct-Terminate-Cause values (RFC 2866 §5.10, RFC 3580 §3.19).
pub mod terminate_cause {
    #![allow(missing_docs)]
    pub const USER_REQUEST: u32 = 1;
    pub const LOST_CARRIER: u32 = 2;
    pub const LOST_SERVICE: u32 = 3;
    pub const IDLE_TIMEOUT: u32 = 4;
    pub const SESSION_TIMEOUT: u32 = 5;
    pub const ADMIN_RESET: u32 = 6;
    pub const ADMIN_REBOOT: u32 = 7;
    pub const PORT_ERROR: u32 = 8;
    pub const NAS_ERROR: u32 = 9;
    pub const NAS_REQUEST: u32 = 10;
    pub const NAS_REBOOT: u32 = 11;
    pub const PORT_UNNEEDED: u32 = 12;
    pub const PORT_PREEMPTED: u32 = 13;
    pub const PORT_SUSPENDED: u32 = 14;
    pub const SERVICE_UNAVAILABLE: u32 = 15;
    pub const CALLBACK: u32 = 16;
    pub const USER_ERROR: u32 = 17;
    pub const HOST_REQUEST: u32 = 18;
    pub const SUPPLICANT_RESTART: u32 = 19;
    pub const REAUTHENTICATION_FAILURE: u32 = 20;
    pub const PORT_REINIT: u32 = 21;
    pub const PORT_DISABLED: u32 = 22;
}

/// The RFC name of an Acct-Terminate-Cause value, `"unknown"` otherwise.
pub fn terminate_cause_name(v: u32) -> &'static str {
    use terminate_cause::*;
    match v {
        USER_REQUEST => "User-Request",
        LOST_CARRIER => "Lost-Carrier",
        LOST_SERVICE => "Lost-Service",
        IDLE_TIMEOUT => "Idle-Timeout",
        SESSION_TIMEOUT => "Session-Timeout",
        ADMIN_RESET => "Admin-Reset",
        ADMIN_REBOOT => "Admin-Reboot",
        PORT_ERROR => "Port-Error",
        NAS_ERROR => "NAS-Error",
        NAS_REQUEST => "NAS-Request",
        NAS_REBOOT => "NAS-Reboot",
        PORT_UNNEEDED => "Port-Unneeded",
        PORT_PREEMPTED => "Port-Preempted",
        PORT_SUSPENDED => "Port-Suspended",
        SERVICE_UNAVAILABLE => "Service-Unavailable",
        CALLBACK => "Callback",
        USER_ERROR => "User-Error",
        HOST_REQUEST => "Host-Request",
        SUPPLICANT_RESTART => "Supplicant-Restart",
        REAUTHENTICATION_FAILURE => "Reauthentication-Failure",
        PORT_REINIT => "Port-Reinit",
        PORT_DISABLED => "Port-Disabled",
        _ => "unknown",
    }
}

/// Acct-Authentic values (RFC 2866 §5.6).
pub mod authentic {
    #![allow(missing_docs)]
    pub const RADIUS: u32 = 1;
    pub const LOCAL: u32 = 2;
    pub const REMOTE: u32 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_type_round_trips_and_known_values_are_not_other() {
        for v in 0..20 {
            let s = StatusType::from_u32(v);
            assert_eq!(s.as_u32(), v);
            assert_eq!(
                matches!(s, StatusType::Other(_)),
                ![1, 2, 3, 7, 8].contains(&v)
            );
        }
    }

    #[test]
    fn terminate_cause_names() {
        assert_eq!(terminate_cause_name(1), "User-Request");
        assert_eq!(terminate_cause_name(18), "Host-Request");
        assert_eq!(terminate_cause_name(22), "Port-Disabled");
        assert_eq!(terminate_cause_name(0), "unknown");
        assert_eq!(terminate_cause_name(23), "unknown");
    }
}
