//! `berth describe pod NAME`: a pod's host and state, and while it is pending, every host's
//! reason for refusing it.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;

use super::client::{fetch, print_raw, s, DescribeArgs};

fn say(line: String) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

pub async fn describe(args: &DescribeArgs) -> Result<(), String> {
    let ns = &args.namespace;
    let name = &args.sha;
    let placement = fetch(
        &args.server.server,
        &format!("/api/v1/pods/{ns}/{name}/placement"),
    )
    .await?;
    let pods = fetch(&args.server.server, "/api/v1/pods").await?;
    let pod = pods
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["namespace"] == ns.as_str() && p["name"] == name.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    let mut both = placement.clone();
    both["pod"] = pod.clone();
    if print_raw(args.output, &both) {
        return Ok(());
    }
    say(format!("Pod:        {ns}/{name}"));
    say(format!("Owner:      {}", s(&pod, "owner")));
    say(format!("Phase:      {}", s(&pod, "phase")));
    if placement["pending"] == Value::Bool(true) {
        say("Node:       none: pending, no host fits".to_string());
        say("Hosts:".to_string());
        for h in placement["hosts"].as_array().into_iter().flatten() {
            let why = match h["fits"] {
                Value::Bool(true) => "fits now: placing at the next pass".to_string(),
                _ => s(h, "reason"),
            };
            say(format!("  {:<20} {why}", s(h, "host")));
        }
    } else {
        say(format!("Node:       {}", s(&placement, "node")));
        say(format!("Ready:      {}", s(&pod, "ready")));
        say(format!("Reason:     {}", s(&pod, "reason")));
    }
    Ok(())
}

/// The reasons of a pending pod on one line: each distinct reason with how many hosts give it.
pub fn summary(reasons: &Value) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in reasons.as_array().into_iter().flatten() {
        let text = r.as_str().unwrap_or_default();
        let why = text.split_once(": ").map_or(text, |(_, w)| w);
        *counts.entry(why.to_string()).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|(why, n)| format!("{why} ({n} host{})", if n == 1 { "" } else { "s" }))
        .collect();
    format!("pending: {}", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_reasons_are_counted_per_reason() {
        let reasons = serde_json::json!([
            "a: insufficient memory: requests 512Mi, free 200Mi",
            "b: insufficient memory: requests 512Mi, free 200Mi",
            "c: nodeSelector disk=ssd: host has no label disk"
        ]);
        assert_eq!(
            summary(&reasons),
            "pending: insufficient memory: requests 512Mi, free 200Mi (2 hosts); nodeSelector disk=ssd: host has no label disk (1 host)"
        );
    }
}
