//! Standard attribute type numbers (RFC 2865 §5, RFC 2866 §5, RFC 2867, RFC 2868,
//! RFC 2869 §5, RFC 3162, RFC 4072, RFC 4372, RFC 4675, RFC 4818, RFC 5176 §3.5,
//! RFC 5447, RFC 5580, RFC 6911), named as in FreeRADIUS's dictionaries.

/// User-Name (1).
pub const USER_NAME: u8 = 1;
/// User-Password (2).
pub const USER_PASSWORD: u8 = 2;
/// CHAP-Password (3).
pub const CHAP_PASSWORD: u8 = 3;
/// NAS-IP-Address (4).
pub const NAS_IP_ADDRESS: u8 = 4;
/// NAS-Port (5).
pub const NAS_PORT: u8 = 5;
/// Service-Type (6).
pub const SERVICE_TYPE: u8 = 6;
/// Framed-Protocol (7).
pub const FRAMED_PROTOCOL: u8 = 7;
/// Framed-IP-Address (8).
pub const FRAMED_IP_ADDRESS: u8 = 8;
/// Framed-IP-Netmask (9).
pub const FRAMED_IP_NETMASK: u8 = 9;
/// Framed-Routing (10).
pub const FRAMED_ROUTING: u8 = 10;
/// Filter-Id (11).
pub const FILTER_ID: u8 = 11;
/// Framed-MTU (12).
pub const FRAMED_MTU: u8 = 12;
/// Framed-Compression (13).
pub const FRAMED_COMPRESSION: u8 = 13;
/// Login-IP-Host (14).
pub const LOGIN_IP_HOST: u8 = 14;
/// Login-Service (15).
pub const LOGIN_SERVICE: u8 = 15;
/// Login-TCP-Port (16).
pub const LOGIN_TCP_PORT: u8 = 16;
/// Reply-Message (18).
pub const REPLY_MESSAGE: u8 = 18;
/// Callback-Number (19).
pub const CALLBACK_NUMBER: u8 = 19;
/// Callback-Id (20).
pub const CALLBACK_ID: u8 = 20;
/// Framed-Route (22).
pub const FRAMED_ROUTE: u8 = 22;
/// Framed-IPX-Network (23).
pub const FRAMED_IPX_NETWORK: u8 = 23;
/// State (24).
pub const STATE: u8 = 24;
/// Class (25).
pub const CLASS: u8 = 25;
/// Vendor-Specific (26).
pub const VENDOR_SPECIFIC: u8 = 26;
/// Session-Timeout (27).
pub const SESSION_TIMEOUT: u8 = 27;
/// Idle-Timeout (28).
pub const IDLE_TIMEOUT: u8 = 28;
/// Termination-Action (29).
pub const TERMINATION_ACTION: u8 = 29;
/// Called-Station-Id (30).
pub const CALLED_STATION_ID: u8 = 30;
/// Calling-Station-Id (31).
pub const CALLING_STATION_ID: u8 = 31;
/// NAS-Identifier (32).
pub const NAS_IDENTIFIER: u8 = 32;
/// Proxy-State (33).
pub const PROXY_STATE: u8 = 33;
/// Login-LAT-Service (34).
pub const LOGIN_LAT_SERVICE: u8 = 34;
/// Login-LAT-Node (35).
pub const LOGIN_LAT_NODE: u8 = 35;
/// Login-LAT-Group (36).
pub const LOGIN_LAT_GROUP: u8 = 36;
/// Framed-AppleTalk-Link (37).
pub const FRAMED_APPLETALK_LINK: u8 = 37;
/// Framed-AppleTalk-Network (38).
pub const FRAMED_APPLETALK_NETWORK: u8 = 38;
/// Framed-AppleTalk-Zone (39).
pub const FRAMED_APPLETALK_ZONE: u8 = 39;
/// Acct-Status-Type (40).
pub const ACCT_STATUS_TYPE: u8 = 40;
/// Acct-Delay-Time (41).
pub const ACCT_DELAY_TIME: u8 = 41;
/// Acct-Input-Octets (42).
pub const ACCT_INPUT_OCTETS: u8 = 42;
/// Acct-Output-Octets (43).
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
/// Acct-Session-Id (44).
pub const ACCT_SESSION_ID: u8 = 44;
/// Acct-Authentic (45).
pub const ACCT_AUTHENTIC: u8 = 45;
/// Acct-Session-Time (46).
pub const ACCT_SESSION_TIME: u8 = 46;
/// Acct-Input-Packets (47).
pub const ACCT_INPUT_PACKETS: u8 = 47;
/// Acct-Output-Packets (48).
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
/// Acct-Terminate-Cause (49).
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
/// Acct-Multi-Session-Id (50).
pub const ACCT_MULTI_SESSION_ID: u8 = 50;
/// Acct-Link-Count (51).
pub const ACCT_LINK_COUNT: u8 = 51;
/// Acct-Input-Gigawords (52).
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
/// Acct-Output-Gigawords (53).
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
/// Event-Timestamp (55).
pub const EVENT_TIMESTAMP: u8 = 55;
/// Egress-VLANID (56).
pub const EGRESS_VLANID: u8 = 56;
/// Ingress-Filters (57).
pub const INGRESS_FILTERS: u8 = 57;
/// Egress-VLAN-Name (58).
pub const EGRESS_VLAN_NAME: u8 = 58;
/// User-Priority-Table (59).
pub const USER_PRIORITY_TABLE: u8 = 59;
/// CHAP-Challenge (60).
pub const CHAP_CHALLENGE: u8 = 60;
/// NAS-Port-Type (61).
pub const NAS_PORT_TYPE: u8 = 61;
/// Port-Limit (62).
pub const PORT_LIMIT: u8 = 62;
/// Login-LAT-Port (63).
pub const LOGIN_LAT_PORT: u8 = 63;
/// Tunnel-Type (64).
pub const TUNNEL_TYPE: u8 = 64;
/// Tunnel-Medium-Type (65).
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
/// Tunnel-Client-Endpoint (66).
pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
/// Tunnel-Server-Endpoint (67).
pub const TUNNEL_SERVER_ENDPOINT: u8 = 67;
/// Acct-Tunnel-Connection (68).
pub const ACCT_TUNNEL_CONNECTION: u8 = 68;
/// Tunnel-Password (69).
pub const TUNNEL_PASSWORD: u8 = 69;
/// ARAP-Password (70).
pub const ARAP_PASSWORD: u8 = 70;
/// ARAP-Features (71).
pub const ARAP_FEATURES: u8 = 71;
/// ARAP-Zone-Access (72).
pub const ARAP_ZONE_ACCESS: u8 = 72;
/// ARAP-Security (73).
pub const ARAP_SECURITY: u8 = 73;
/// ARAP-Security-Data (74).
pub const ARAP_SECURITY_DATA: u8 = 74;
/// Password-Retry (75).
pub const PASSWORD_RETRY: u8 = 75;
/// Prompt (76).
pub const PROMPT: u8 = 76;
/// Connect-Info (77).
pub const CONNECT_INFO: u8 = 77;
/// Configuration-Token (78).
pub const CONFIGURATION_TOKEN: u8 = 78;
/// EAP-Message (79).
pub const EAP_MESSAGE: u8 = 79;
/// Message-Authenticator (80).
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
/// Tunnel-Private-Group-Id (81).
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;
/// Tunnel-Assignment-Id (82).
pub const TUNNEL_ASSIGNMENT_ID: u8 = 82;
/// Tunnel-Preference (83).
pub const TUNNEL_PREFERENCE: u8 = 83;
/// ARAP-Challenge-Response (84).
pub const ARAP_CHALLENGE_RESPONSE: u8 = 84;
/// Acct-Interim-Interval (85).
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
/// Acct-Tunnel-Packets-Lost (86).
pub const ACCT_TUNNEL_PACKETS_LOST: u8 = 86;
/// NAS-Port-Id (87).
pub const NAS_PORT_ID: u8 = 87;
/// Framed-Pool (88).
pub const FRAMED_POOL: u8 = 88;
/// Chargeable-User-Identity (89).
pub const CHARGEABLE_USER_IDENTITY: u8 = 89;
/// Tunnel-Client-Auth-Id (90).
pub const TUNNEL_CLIENT_AUTH_ID: u8 = 90;
/// Tunnel-Server-Auth-Id (91).
pub const TUNNEL_SERVER_AUTH_ID: u8 = 91;
/// NAS-IPv6-Address (95).
pub const NAS_IPV6_ADDRESS: u8 = 95;
/// Framed-Interface-Id (96).
pub const FRAMED_INTERFACE_ID: u8 = 96;
/// Framed-IPv6-Prefix (97).
pub const FRAMED_IPV6_PREFIX: u8 = 97;
/// Login-IPv6-Host (98).
pub const LOGIN_IPV6_HOST: u8 = 98;
/// Framed-IPv6-Route (99).
pub const FRAMED_IPV6_ROUTE: u8 = 99;
/// Framed-IPv6-Pool (100).
pub const FRAMED_IPV6_POOL: u8 = 100;
/// Error-Cause (101).
pub const ERROR_CAUSE: u8 = 101;
/// EAP-Key-Name (102).
pub const EAP_KEY_NAME: u8 = 102;
/// Delegated-IPv6-Prefix (123).
pub const DELEGATED_IPV6_PREFIX: u8 = 123;
/// MIP6-Feature-Vector (124).
pub const MIP6_FEATURE_VECTOR: u8 = 124;
/// MIP6-Home-Link-Prefix (125).
pub const MIP6_HOME_LINK_PREFIX: u8 = 125;
/// Operator-Name (126).
pub const OPERATOR_NAME: u8 = 126;
/// Location-Information (127).
pub const LOCATION_INFORMATION: u8 = 127;
/// Location-Data (128).
pub const LOCATION_DATA: u8 = 128;
/// Basic-Location-Policy-Rules (129).
pub const BASIC_LOCATION_POLICY_RULES: u8 = 129;
/// Extended-Location-Policy-Rules (130).
pub const EXTENDED_LOCATION_POLICY_RULES: u8 = 130;
/// Location-Capable (131).
pub const LOCATION_CAPABLE: u8 = 131;
/// Requested-Location-Info (132).
pub const REQUESTED_LOCATION_INFO: u8 = 132;
/// Framed-IPv6-Address (168).
pub const FRAMED_IPV6_ADDRESS: u8 = 168;
/// DNS-Server-IPv6-Address (169).
pub const DNS_SERVER_IPV6_ADDRESS: u8 = 169;
/// Route-IPv6-Information (170).
pub const ROUTE_IPV6_INFORMATION: u8 = 170;
/// Delegated-IPv6-Prefix-Pool (171).
pub const DELEGATED_IPV6_PREFIX_POOL: u8 = 171;
/// Stateful-IPv6-Address-Pool (172).
pub const STATEFUL_IPV6_ADDRESS_POOL: u8 = 172;

/// The dictionary name of a standard attribute type, for logs and error messages.
pub fn name(typ: u8) -> Option<&'static str> {
    Some(match typ {
        USER_NAME => "User-Name",
        USER_PASSWORD => "User-Password",
        CHAP_PASSWORD => "CHAP-Password",
        NAS_IP_ADDRESS => "NAS-IP-Address",
        NAS_PORT => "NAS-Port",
        SERVICE_TYPE => "Service-Type",
        FRAMED_PROTOCOL => "Framed-Protocol",
        FRAMED_IP_ADDRESS => "Framed-IP-Address",
        FRAMED_IP_NETMASK => "Framed-IP-Netmask",
        FRAMED_ROUTING => "Framed-Routing",
        FILTER_ID => "Filter-Id",
        FRAMED_MTU => "Framed-MTU",
        FRAMED_COMPRESSION => "Framed-Compression",
        LOGIN_IP_HOST => "Login-IP-Host",
        LOGIN_SERVICE => "Login-Service",
        LOGIN_TCP_PORT => "Login-TCP-Port",
        REPLY_MESSAGE => "Reply-Message",
        CALLBACK_NUMBER => "Callback-Number",
        CALLBACK_ID => "Callback-Id",
        FRAMED_ROUTE => "Framed-Route",
        FRAMED_IPX_NETWORK => "Framed-IPX-Network",
        STATE => "State",
        CLASS => "Class",
        VENDOR_SPECIFIC => "Vendor-Specific",
        SESSION_TIMEOUT => "Session-Timeout",
        IDLE_TIMEOUT => "Idle-Timeout",
        TERMINATION_ACTION => "Termination-Action",
        CALLED_STATION_ID => "Called-Station-Id",
        CALLING_STATION_ID => "Calling-Station-Id",
        NAS_IDENTIFIER => "NAS-Identifier",
        PROXY_STATE => "Proxy-State",
        LOGIN_LAT_SERVICE => "Login-LAT-Service",
        LOGIN_LAT_NODE => "Login-LAT-Node",
        LOGIN_LAT_GROUP => "Login-LAT-Group",
        FRAMED_APPLETALK_LINK => "Framed-AppleTalk-Link",
        FRAMED_APPLETALK_NETWORK => "Framed-AppleTalk-Network",
        FRAMED_APPLETALK_ZONE => "Framed-AppleTalk-Zone",
        ACCT_STATUS_TYPE => "Acct-Status-Type",
        ACCT_DELAY_TIME => "Acct-Delay-Time",
        ACCT_INPUT_OCTETS => "Acct-Input-Octets",
        ACCT_OUTPUT_OCTETS => "Acct-Output-Octets",
        ACCT_SESSION_ID => "Acct-Session-Id",
        ACCT_AUTHENTIC => "Acct-Authentic",
        ACCT_SESSION_TIME => "Acct-Session-Time",
        ACCT_INPUT_PACKETS => "Acct-Input-Packets",
        ACCT_OUTPUT_PACKETS => "Acct-Output-Packets",
        ACCT_TERMINATE_CAUSE => "Acct-Terminate-Cause",
        ACCT_MULTI_SESSION_ID => "Acct-Multi-Session-Id",
        ACCT_LINK_COUNT => "Acct-Link-Count",
        ACCT_INPUT_GIGAWORDS => "Acct-Input-Gigawords",
        ACCT_OUTPUT_GIGAWORDS => "Acct-Output-Gigawords",
        EVENT_TIMESTAMP => "Event-Timestamp",
        EGRESS_VLANID => "Egress-VLANID",
        INGRESS_FILTERS => "Ingress-Filters",
        EGRESS_VLAN_NAME => "Egress-VLAN-Name",
        USER_PRIORITY_TABLE => "User-Priority-Table",
        CHAP_CHALLENGE => "CHAP-Challenge",
        NAS_PORT_TYPE => "NAS-Port-Type",
        PORT_LIMIT => "Port-Limit",
        LOGIN_LAT_PORT => "Login-LAT-Port",
        TUNNEL_TYPE => "Tunnel-Type",
        TUNNEL_MEDIUM_TYPE => "Tunnel-Medium-Type",
        TUNNEL_CLIENT_ENDPOINT => "Tunnel-Client-Endpoint",
        TUNNEL_SERVER_ENDPOINT => "Tunnel-Server-Endpoint",
        ACCT_TUNNEL_CONNECTION => "Acct-Tunnel-Connection",
        TUNNEL_PASSWORD => "Tunnel-Password",
        ARAP_PASSWORD => "ARAP-Password",
        ARAP_FEATURES => "ARAP-Features",
        ARAP_ZONE_ACCESS => "ARAP-Zone-Access",
        ARAP_SECURITY => "ARAP-Security",
        ARAP_SECURITY_DATA => "ARAP-Security-Data",
        PASSWORD_RETRY => "Password-Retry",
        PROMPT => "Prompt",
        CONNECT_INFO => "Connect-Info",
        CONFIGURATION_TOKEN => "Configuration-Token",
        EAP_MESSAGE => "EAP-Message",
        MESSAGE_AUTHENTICATOR => "Message-Authenticator",
        TUNNEL_PRIVATE_GROUP_ID => "Tunnel-Private-Group-Id",
        TUNNEL_ASSIGNMENT_ID => "Tunnel-Assignment-Id",
        TUNNEL_PREFERENCE => "Tunnel-Preference",
        ARAP_CHALLENGE_RESPONSE => "ARAP-Challenge-Response",
        ACCT_INTERIM_INTERVAL => "Acct-Interim-Interval",
        ACCT_TUNNEL_PACKETS_LOST => "Acct-Tunnel-Packets-Lost",
        NAS_PORT_ID => "NAS-Port-Id",
        FRAMED_POOL => "Framed-Pool",
        CHARGEABLE_USER_IDENTITY => "Chargeable-User-Identity",
        TUNNEL_CLIENT_AUTH_ID => "Tunnel-Client-Auth-Id",
        TUNNEL_SERVER_AUTH_ID => "Tunnel-Server-Auth-Id",
        NAS_IPV6_ADDRESS => "NAS-IPv6-Address",
        FRAMED_INTERFACE_ID => "Framed-Interface-Id",
        FRAMED_IPV6_PREFIX => "Framed-IPv6-Prefix",
        LOGIN_IPV6_HOST => "Login-IPv6-Host",
        FRAMED_IPV6_ROUTE => "Framed-IPv6-Route",
        FRAMED_IPV6_POOL => "Framed-IPv6-Pool",
        ERROR_CAUSE => "Error-Cause",
        EAP_KEY_NAME => "EAP-Key-Name",
        DELEGATED_IPV6_PREFIX => "Delegated-IPv6-Prefix",
        MIP6_FEATURE_VECTOR => "MIP6-Feature-Vector",
        MIP6_HOME_LINK_PREFIX => "MIP6-Home-Link-Prefix",
        OPERATOR_NAME => "Operator-Name",
        LOCATION_INFORMATION => "Location-Information",
        LOCATION_DATA => "Location-Data",
        BASIC_LOCATION_POLICY_RULES => "Basic-Location-Policy-Rules",
        EXTENDED_LOCATION_POLICY_RULES => "Extended-Location-Policy-Rules",
        LOCATION_CAPABLE => "Location-Capable",
        REQUESTED_LOCATION_INFO => "Requested-Location-Info",
        FRAMED_IPV6_ADDRESS => "Framed-IPv6-Address",
        DNS_SERVER_IPV6_ADDRESS => "DNS-Server-IPv6-Address",
        ROUTE_IPV6_INFORMATION => "Route-IPv6-Information",
        DELEGATED_IPV6_PREFIX_POOL => "Delegated-IPv6-Prefix-Pool",
        STATEFUL_IPV6_ADDRESS_POOL => "Stateful-IPv6-Address-Pool",
        _ => return None,
    })
}
