//! TLS for every non-local endpoint: an endpoint URL given to melange must be `https://`
//! unless its host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`), or the caller
//! opted in to plain HTTP ([`ElasticMqBackendBuilder::allow_plain_http`]).
//!
//! [`ElasticMqBackendBuilder::allow_plain_http`]: crate::ElasticMqBackendBuilder::allow_plain_http

use std::net::IpAddr;

use aws_config::SdkConfig;
use aws_types::service_config::ServiceConfigKey;

/// An endpoint URL melange refuses to send requests (and signed credentials) to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// A plain `http://` endpoint whose host is not a loopback address: credentials and
    /// messages would cross the network unencrypted.
    #[error(
        "refusing the plain-HTTP endpoint `{endpoint}`: `{host}` is not a loopback host, so \
         requests would cross the network unencrypted; use an `https://` endpoint, or, for a \
         local server on a trusted private network (docker-compose, `http://elasticmq:9324`), \
         opt in with `ElasticMqBackend::builder(endpoint).allow_plain_http(true)`"
    )]
    PlainHttp {
        /// The endpoint URL (without any user information).
        endpoint: String,
        /// Its host.
        host: String,
    },
    /// The configuration has no AWS region. Without one the SDK can neither find an
    /// endpoint nor sign a request, and every call would fail as if the server were
    /// unreachable (a transient error, retried for ever).
    #[error(
        "no AWS region is configured: set `AWS_REGION` (or `region` in the AWS profile), or \
         give the SDK configuration one"
    )]
    NoRegion,
    /// Not an `http://` or `https://` URL with a host.
    #[error("invalid endpoint URL `{endpoint}`: {reason}")]
    Invalid {
        /// The endpoint URL (without any user information).
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Whether `host` (a URL host: a name, an IPv4 address or a bracketed IPv6 address) is a
/// loopback host: `localhost`, `127.0.0.0/8`, `::1` (or `::ffff:127.x.y.z`).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let address = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    address
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Checks that `endpoint` is an `https://` URL, or an `http://` URL on a loopback host, or
/// an `http://` URL at all when `allow_plain_http` is set.
///
/// ```
/// use melange_sqs::{EndpointError, check_endpoint};
///
/// assert!(check_endpoint("https://sqs.eu-west-1.amazonaws.com", false).is_ok());
/// assert!(check_endpoint("http://127.0.0.1:9324", false).is_ok());
/// assert!(matches!(
///     check_endpoint("http://elasticmq:9324", false),
///     Err(EndpointError::PlainHttp { .. })
/// ));
/// assert!(check_endpoint("http://elasticmq:9324", true).is_ok());
/// ```
pub fn check_endpoint(endpoint: &str, allow_plain_http: bool) -> Result<(), EndpointError> {
    let invalid = |reason| EndpointError::Invalid {
        endpoint: redact(endpoint),
        reason,
    };
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return Err(invalid("it has no scheme (`https://host[:port]`)"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end])
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(invalid("it has no host"));
    }
    if scheme.eq_ignore_ascii_case("https") {
        Ok(())
    } else if scheme.eq_ignore_ascii_case("http") {
        if allow_plain_http || is_loopback_host(host) {
            Ok(())
        } else {
            Err(EndpointError::PlainHttp {
                endpoint: redact(endpoint),
                host: host.to_owned(),
            })
        }
    } else {
        Err(invalid("the scheme is neither `https` nor `http`"))
    }
}

/// Checks the endpoint URLs an [`SdkConfig`] gives SQS and SNS: its own, and the
/// service-specific ones (`AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_SNS`, the profile's
/// `services` section). Without any, the SDK resolves `https://` AWS endpoints from the
/// region.
pub(crate) fn check_sdk_config(config: &SdkConfig) -> Result<(), EndpointError> {
    if let Some(endpoint) = config.endpoint_url() {
        check_endpoint(endpoint, false)?;
    }
    if let Some(services) = config.service_config() {
        for service_id in ["SQS", "SNS"] {
            let key = ServiceConfigKey::builder()
                .service_id(service_id)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build();
            if let Some(endpoint) = key.ok().and_then(|key| services.load_config(key)) {
                check_endpoint(&endpoint, false)?;
            }
        }
    }
    Ok(())
}

/// The endpoint without user information (`https://user:secret@host` → `https://***@host`).
/// Everything before the last `@` ahead of any query or fragment goes, not only before the
/// first `/`: a password written with a raw `/` (`http://key:ab/cd@host`) must not show.
pub(crate) fn redact(endpoint: &str) -> String {
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return endpoint.to_owned();
    };
    let query = rest.find(['?', '#']).unwrap_or(rest.len());
    match rest[..query].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => endpoint.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "127.0.0.1",
            "127.1.2.3",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "elasticmq",
            "10.0.0.1",
            "0.0.0.0",
            "[::]",
            "localhost.example.com",
            "127.0.0.1.nip.io",
            "[fe80::1]",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn endpoints() {
        for ok in [
            "https://sqs.us-east-1.amazonaws.com",
            "HTTPS://example.com:443/path",
            "http://127.0.0.1:9324",
            "http://localhost:4566/",
            "http://[::1]:9324",
            "http://user:pw@localhost:1",
        ] {
            assert_eq!(check_endpoint(ok, false), Ok(()), "{ok}");
        }
        for (plain, host) in [
            ("http://elasticmq:9324", "elasticmq"),
            ("http://10.1.2.3", "10.1.2.3"),
            ("http://[2001:db8::1]:80/x", "[2001:db8::1]"),
            ("http://localhost.evil.com", "localhost.evil.com"),
            ("http://127.0.0.1@evil.com", "evil.com"),
        ] {
            assert!(
                matches!(check_endpoint(plain, false), Err(EndpointError::PlainHttp { host: h, .. }) if h == host),
                "{plain}"
            );
            assert_eq!(check_endpoint(plain, true), Ok(()), "{plain}");
        }
        for invalid in ["elasticmq:9324", "ftp://host", "http://", "http:///path"] {
            assert!(
                matches!(
                    check_endpoint(invalid, true),
                    Err(EndpointError::Invalid { .. })
                ),
                "{invalid}"
            );
        }
    }

    #[derive(Debug)]
    struct ServiceEndpoints(&'static str, &'static str);

    impl aws_types::service_config::LoadServiceConfig for ServiceEndpoints {
        fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
            (key.service_id() == self.0 && key.env() == "AWS_ENDPOINT_URL")
                .then(|| self.1.to_owned())
        }
    }

    #[test]
    fn service_specific_endpoint_urls_are_checked() {
        let config = |service, url| {
            SdkConfig::builder()
                .service_config(ServiceEndpoints(service, url))
                .build()
        };
        for service in ["SQS", "SNS"] {
            assert!(matches!(
                check_sdk_config(&config(service, "http://sqs.internal")),
                Err(EndpointError::PlainHttp { .. })
            ));
            assert_eq!(
                check_sdk_config(&config(service, "https://sqs.internal")),
                Ok(())
            );
            assert_eq!(
                check_sdk_config(&config(service, "http://127.0.0.1:1")),
                Ok(())
            );
        }
        assert_eq!(
            check_sdk_config(&config("S3", "http://s3.internal")),
            Ok(())
        );
    }

    #[test]
    fn errors_show_no_user_information() {
        let error =
            check_endpoint("http://key:secret@sqs.internal/q", false).expect_err("plain HTTP");
        let text = error.to_string();
        assert!(!text.contains("secret") && !text.contains("key:"), "{text}");
        assert!(text.contains("http://***@sqs.internal/q"), "{text}");
        assert!(text.contains("allow_plain_http"), "{text}");
        for endpoint in [
            "http://key:ab/cd@sqs.internal",
            "http://key:ab@cd/ef@sqs.internal/q",
        ] {
            let shown = redact(endpoint);
            assert!(!shown.contains("ab") && !shown.contains("key"), "{shown}");
            assert!(shown.contains("@sqs.internal"), "{shown}");
        }
    }
}
