//! What a notification says: one [`Message`] per alert event or digest,
//! rendered for every channel at once (email subject and bodies, SMS text,
//! webhook JSON). Pure: the worker reads the alert, its finding and a
//! digest's members, and passes them in.

use simguard_engine::time::rfc3339;
use simguard_engine::Finding;
use simguard_notify::Message;
use simguard_store::{Alert, Notification};

/// The webhook payload's schema version: receivers switch on
/// `type` = `alert.<event>.v1`.
pub const VERSION: &str = "v1";

/// Escapes text for HTML bodies.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn link(console_url: &str, alert: u64) -> String {
    format!("{}/alerts/{alert}", console_url.trim_end_matches('/'))
}

fn scope(a: &Alert) -> String {
    match (&a.tenant, &a.group) {
        (Some(t), Some(g)) => format!(" ({g}/{t})"),
        (Some(t), None) => format!(" ({t})"),
        _ => String::new(),
    }
}

/// The evidence in one line: the finding's summary and what it was held
/// to, or the alert's own summary when there is no finding.
fn evidence_line(a: &Alert, f: Option<&Finding>) -> String {
    match f {
        Some(f) if !f.evidence.baseline.is_empty() => {
            format!("{} (against {})", f.evidence.summary, f.evidence.baseline)
        }
        Some(f) => f.evidence.summary.clone(),
        None => a.summary.clone(),
    }
}

/// The message of one alert event ("raised" or "cleared").
pub fn alert_message(
    n: &Notification,
    a: &Alert,
    finding: Option<&Finding>,
    console_url: &str,
) -> Message {
    let sev = a.severity.as_str().to_uppercase();
    let cleared = n.event == "cleared";
    let verb = if cleared { "cleared" } else { "raised" };
    let title = format!(
        "[{sev}] {}{} on {} {}{}",
        a.kind,
        if cleared { " cleared" } else { "" },
        a.subject_type,
        a.subject,
        scope(a)
    );
    let evidence = evidence_line(a, finding);
    let url = link(console_url, a.id);
    let when = rfc3339(if cleared {
        a.end.unwrap_or(n.created)
    } else {
        a.start
    });
    let text = format!(
        "{title}\n\nDevice: {} {}{}\nWhat happened: {} {verb} at {when} (seen {} time{})\nEvidence: {evidence}\nSeverity: {}\n\nOpen in the console: {url}\n",
        a.subject_type,
        a.subject,
        scope(a),
        a.kind,
        a.count,
        if a.count == 1 { "" } else { "s" },
        a.severity.as_str(),
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\">\
         <h2>{}</h2><table>\
         <tr><th align=left>Device</th><td>{} {}{}</td></tr>\
         <tr><th align=left>What happened</th><td>{} {verb} at {when} (seen {} times)</td></tr>\
         <tr><th align=left>Evidence</th><td>{}</td></tr>\
         <tr><th align=left>Severity</th><td>{}</td></tr></table>\
         <p><a href=\"{}\">Open in the console</a></p></body></html>",
        esc(&title),
        esc(&a.subject_type),
        esc(&a.subject),
        esc(&scope(a)),
        esc(&a.kind),
        a.count,
        esc(&evidence),
        esc(a.severity.as_str()),
        esc(&url),
    );
    let sms = format!("{title}: {evidence} {url}");
    let payload = serde_json::json!({
        "type": format!("alert.{verb}.{VERSION}"),
        "id": n.message,
        "time": rfc3339(n.created),
        "data": {
            "alert": {
                "id": a.id,
                "type": a.kind,
                "severity": a.severity.as_str(),
                "state": a.state.as_str(),
                "acknowledged": a.acknowledged,
                "subject": { "type": a.subject_type, "id": a.subject },
                "imsi": a.imsi,
                "tenant": a.tenant,
                "group": a.group,
                "start": rfc3339(a.start),
                "last": rfc3339(a.last),
                "end": a.end.map(rfc3339),
                "count": a.count,
                "summary": a.summary,
                "finding": a.finding.map(|f| f.to_string()),
            },
            "evidence": evidence,
            "url": url,
        }
    });
    Message {
        id: n.message.clone(),
        event_type: format!("alert.{verb}.{VERSION}"),
        time: n.created,
        title,
        text,
        html,
        sms,
        payload,
        recipients: recipients(n),
    }
}

fn recipients(n: &Notification) -> Vec<String> {
    if n.recipient.is_empty() {
        Vec::new()
    } else {
        vec![n.recipient.clone()]
    }
}

/// Alerts listed in full in a digest; the rest are counted.
const DIGEST_LISTED: usize = 50;

/// The message of a digest: the alerts held back by a cap or quiet hours.
pub fn digest_message(
    n: &Notification,
    members: &[(Notification, Option<Alert>)],
    console_url: &str,
) -> Message {
    let total = members.len();
    let title = format!(
        "[{}] simguard digest: {total} alert notification{} held back ({})",
        n.severity.as_str().to_uppercase(),
        if total == 1 { "" } else { "s" },
        n.subscription
    );
    let mut lines = Vec::new();
    let mut items = Vec::new();
    for (m, a) in members.iter().take(DIGEST_LISTED) {
        let line = match a {
            Some(a) => format!(
                "{} {} {} on {} {}{}: {}",
                rfc3339(m.created),
                a.severity.as_str(),
                a.kind,
                a.subject_type,
                a.subject,
                if m.event == "cleared" {
                    " (cleared)"
                } else {
                    ""
                },
                a.summary
            ),
            None => format!("{} {}", rfc3339(m.created), m.message),
        };
        lines.push(line);
        items.push(serde_json::json!({
            "id": m.message,
            "event": m.event,
            "time": rfc3339(m.created),
            "alert": a.as_ref().map(|a| serde_json::json!({
                "id": a.id, "type": a.kind, "severity": a.severity.as_str(),
                "subject": { "type": a.subject_type, "id": a.subject }, "summary": a.summary,
            })),
        }));
    }
    let more = total.saturating_sub(DIGEST_LISTED);
    if more > 0 {
        lines.push(format!("… and {more} more"));
    }
    let url = format!("{}/alerts", console_url.trim_end_matches('/'));
    let text = format!(
        "{title}\n\nA notification cap or quiet hours held these back:\n\n{}\n\nOpen in the console: {url}\n",
        lines.join("\n")
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2>\
         <p>A notification cap or quiet hours held these back:</p><ul>{}</ul>\
         <p><a href=\"{}\">Open in the console</a></p></body></html>",
        esc(&title),
        lines
            .iter()
            .map(|l| format!("<li>{}</li>", esc(l)))
            .collect::<String>(),
        esc(&url)
    );
    let sms = format!(
        "simguard: {total} alerts held back ({}). {url}",
        n.subscription
    );
    let payload = serde_json::json!({
        "type": format!("alert.digest.{VERSION}"),
        "id": n.message,
        "time": rfc3339(n.created),
        "data": { "count": total, "items": items, "url": url },
    });
    Message {
        id: n.message.clone(),
        event_type: format!("alert.digest.{VERSION}"),
        time: n.created,
        title,
        text,
        html,
        sms,
        payload,
        recipients: recipients(n),
    }
}
