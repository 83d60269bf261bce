//! The JSON documents SQS and SNS attributes hold: redrive policies, queue access policies
//! and subscription filter policies. Pure functions, no SDK types.

use melange_core::backend::DeadLetterPolicy;
use serde_json::{Map, Value, json};

/// The last segment of an ARN: the queue or topic name.
pub(crate) fn name_of_arn(arn: &str) -> &str {
    arn.rsplit_once(':').map_or(arn, |(_, name)| name)
}

/// The `RedrivePolicy` attribute: `{"deadLetterTargetArn": ..., "maxReceiveCount": N}`.
pub(crate) fn redrive_policy(dead_letter_arn: &str, max_receive_count: u32) -> String {
    json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": max_receive_count,
    })
    .to_string()
}

/// Reads a `RedrivePolicy` attribute; `maxReceiveCount` may be a number or, as Python
/// Melange writes it, a string. `None` if it is not a redrive policy.
pub(crate) fn parse_redrive_policy(policy: &str) -> Option<DeadLetterPolicy> {
    let value: Value = serde_json::from_str(policy).ok()?;
    let arn = value.get("deadLetterTargetArn")?.as_str()?;
    let max_receive_count = match value.get("maxReceiveCount")? {
        Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(DeadLetterPolicy {
        queue: name_of_arn(arn).to_owned(),
        max_receive_count,
    })
}

/// The subscription `FilterPolicy` Python Melange writes: `{"manifest": [...]}`, or `{}` (no
/// filter) when there are no manifests to filter on.
pub(crate) fn filter_policy(manifests: Option<&[String]>) -> String {
    match manifests {
        Some(manifests) => json!({ "manifest": manifests }).to_string(),
        None => "{}".to_owned(),
    }
}

/// The most values SNS allows in a filter policy (their "total combination").
const MAX_FILTER_VALUES: usize = 150;

/// The largest filter policy SNS accepts, in bytes.
const MAX_FILTER_POLICY_SIZE: usize = 256 * 1024;

/// The `FilterPolicy` of a manifest filter, or why SNS would refuse it: no manifests (SNS
/// refuses `{"manifest":[]}`, and a filter that lets nothing through is a mistake; the
/// in-memory backend refuses it too), more than 150, or a policy over 256 KiB.
pub(crate) fn checked_filter_policy(manifests: &[String]) -> Result<String, String> {
    if manifests.is_empty() {
        return Err("a manifest filter must list at least one manifest".to_owned());
    }
    if manifests.len() > MAX_FILTER_VALUES {
        return Err(format!(
            "a manifest filter lists at most {MAX_FILTER_VALUES} manifests"
        ));
    }
    let policy = filter_policy(Some(manifests));
    if policy.len() > MAX_FILTER_POLICY_SIZE {
        return Err(format!(
            "a manifest filter's policy is at most {MAX_FILTER_POLICY_SIZE} bytes, this one {}",
            policy.len()
        ));
    }
    Ok(policy)
}

/// The statement that lets `topic_arn` send to `queue_arn`, as Python Melange writes it.
fn allow_statement(queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Sid": format!("melange-{}", sid_suffix(topic_arn)),
        "Effect": "Allow",
        "Principal": "*",
        "Resource": queue_arn,
        "Action": "sqs:SendMessage",
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    })
}

/// A statement id derived from the topic ARN, so declaring twice writes the same statement.
fn sid_suffix(topic_arn: &str) -> String {
    topic_arn
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Whether a statement already lets `topic_arn` send messages.
fn allows(statement: &Value, topic_arn: &str) -> bool {
    let effect_allows = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
    let action_sends = match statement.get("Action") {
        Some(Value::String(action)) => is_send_action(action),
        Some(Value::Array(actions)) => actions
            .iter()
            .any(|a| a.as_str().is_some_and(is_send_action)),
        _ => false,
    };
    let source = statement
        .get("Condition")
        .and_then(|c| c.get("ArnEquals").or_else(|| c.get("ArnLike")))
        .and_then(|c| c.get("aws:SourceArn"));
    let source_matches = match source {
        Some(Value::String(arn)) => arn == topic_arn,
        Some(Value::Array(arns)) => arns.iter().any(|a| a.as_str() == Some(topic_arn)),
        _ => false,
    };
    effect_allows && action_sends && source_matches
}

fn is_send_action(action: &str) -> bool {
    matches!(
        action,
        "sqs:SendMessage" | "sqs:*" | "SQS:SendMessage" | "SQS:*"
    )
}

/// The queue `Policy` after allowing `topic_arn` to send to the queue, keeping every existing
/// statement (so a queue subscribed to several topics accepts all of them). `Ok(None)` when
/// the existing policy already allows it; an error when the existing policy is not a JSON
/// object with a statement list.
pub(crate) fn allow_topic(
    existing: Option<&str>,
    queue_arn: &str,
    topic_arn: &str,
) -> Result<Option<String>, String> {
    let mut policy = match existing.map(str::trim).filter(|p| !p.is_empty()) {
        None => {
            let mut policy = Map::new();
            policy.insert("Version".to_owned(), json!("2012-10-17"));
            policy.insert("Id".to_owned(), json!("sqspolicy"));
            policy
        }
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(policy)) => policy,
            Ok(_) => return Err("the queue policy is not a JSON object".to_owned()),
            Err(error) => return Err(format!("the queue policy is not JSON: {error}")),
        },
    };
    let statements = match policy.remove("Statement") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(statements)) => statements,
        Some(statement @ Value::Object(_)) => vec![statement],
        Some(_) => return Err("the queue policy's `Statement` is not a list".to_owned()),
    };
    if statements.iter().any(|s| allows(s, topic_arn)) {
        return Ok(None);
    }
    let mut statements = statements;
    statements.push(allow_statement(queue_arn, topic_arn));
    policy.insert("Statement".to_owned(), Value::Array(statements));
    Ok(Some(Value::Object(policy).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:q";
    const T1: &str = "arn:aws:sns:us-east-1:123456789012:t1";
    const T2: &str = "arn:aws:sns:us-east-1:123456789012:t2";

    #[test]
    fn redrive_policy_reads_numbers_and_python_strings() {
        let written = redrive_policy("arn:aws:sqs:us-east-1:1:dlq", 3);
        let expected = DeadLetterPolicy {
            queue: "dlq".to_owned(),
            max_receive_count: 3,
        };
        assert_eq!(parse_redrive_policy(&written), Some(expected));
        let python =
            r#"{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:d", "maxReceiveCount": "4"}"#;
        assert_eq!(parse_redrive_policy(python).unwrap().max_receive_count, 4);
        assert_eq!(parse_redrive_policy("nonsense"), None);
    }

    #[test]
    fn policies_merge_statements_per_topic() {
        let first = allow_topic(None, QUEUE, T1).unwrap().unwrap();
        assert_eq!(allow_topic(Some(&first), QUEUE, T1).unwrap(), None);
        let second = allow_topic(Some(&first), QUEUE, T2).unwrap().unwrap();
        let parsed: Value = serde_json::from_str(&second).unwrap();
        let statements = parsed["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert!(allows(&statements[0], T1) && allows(&statements[1], T2));
        assert_eq!(parsed["Version"], "2012-10-17");
    }

    #[test]
    fn python_melange_policies_are_recognised() {
        let python = json!({
            "Version": "2012-10-17", "Id": "sqspolicy",
            "Statement": [{
                "Sid": "Sid2f6f", "Effect": "Allow", "Principal": "*", "Resource": QUEUE,
                "Action": "sqs:SendMessage",
                "Condition": {"ArnEquals": {"aws:SourceArn": T1}},
            }],
        })
        .to_string();
        assert_eq!(allow_topic(Some(&python), QUEUE, T1).unwrap(), None);
        assert!(allow_topic(Some("[]"), QUEUE, T1).is_err());
    }

    #[test]
    fn filters_sns_would_refuse_are_refused() {
        let manifests = |n: usize, len: usize| -> Vec<String> {
            (0..n).map(|i| format!("{i:0len$}")).collect()
        };
        assert_eq!(
            checked_filter_policy(&["A".to_owned()]).unwrap(),
            r#"{"manifest":["A"]}"#
        );
        assert!(checked_filter_policy(&manifests(150, 8)).is_ok());
        let empty = checked_filter_policy(&[]).unwrap_err();
        assert!(empty.contains("at least one manifest"), "{empty}");
        let many = checked_filter_policy(&manifests(151, 8)).unwrap_err();
        assert!(many.contains("at most 150"), "{many}");
        let large = checked_filter_policy(&manifests(100, 3000)).unwrap_err();
        assert!(large.contains("bytes"), "{large}");
    }

    #[test]
    fn filter_policies() {
        assert_eq!(filter_policy(None), "{}");
        assert_eq!(
            filter_policy(Some(&["A".to_owned(), "B".to_owned()])),
            r#"{"manifest":["A","B"]}"#
        );
    }
}
