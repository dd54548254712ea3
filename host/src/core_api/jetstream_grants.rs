//! The subjects a JetStream API request names in its JSON body, checked
//! against the plugin's [`SubjectGrants`] like the subjects it sends to.
//!
//! A grant of `$JS.API.STREAM.CREATE.*` is a grant to create streams, not
//! to read the whole account: a stream *captures* its `subjects`, a
//! `republish` *publishes* what it stores, `sources` and `mirror` *copy*
//! another stream, and a push consumer or a snapshot *publishes* a stream's
//! messages to a `deliver_subject`. So, for the endpoints below, the body is
//! parsed and every subject it names must be granted:
//!
//! | endpoint | field | must be granted as |
//! |---|---|---|
//! | `STREAM.CREATE.<s>`, `STREAM.UPDATE.<s>`, `STREAM.RESTORE.<s>` (`config`) | `subjects` (without any, the server uses the stream's name) | a subscription: the stream captures them |
//! | same | `republish.dest` | a publish target |
//! | same | `mirror.name`, `sources[].name` | `$JS.API.STREAM.INFO.<name>`: the plugin's own streams; `external` (another account or domain) is refused |
//! | `CONSUMER.CREATE.<s>…`, `CONSUMER.DURABLE.CREATE.<s>.<c>` | `config.deliver_subject` | a publish target (`stream_name` must be `<s>`) |
//! | `STREAM.SNAPSHOT.<s>` | `deliver_subject` | a publish target |
//! | `STREAM.TEMPLATE.CREATE.…` | — | refused: templates make streams on their own |
//!
//! A body that is not a JSON object is refused on these endpoints. The
//! server reads JSON with Go's `encoding/json`, which matches field names
//! case-insensitively (`SUBJECTS` is `subjects`; `ſ` is `s`): fields are
//! looked up the same way here, and an object holding two spellings of one
//! field, which the two parsers might read differently, is refused.
//! Stream `subject_transform` (nats-server 2.10) is not checked: 2.9 ignores
//! it.

use crate::policy::grants::SubjectGrants;
use crate::policy::subject::{self as rules, Use};
use serde_json::{Map, Value};

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The body names a subject (or stream) the grants do not cover; says
    /// which field and which subject.
    #[error("{0}")]
    NotGranted(String),
    /// The body cannot be read, or is ambiguous.
    #[error("{0}")]
    Invalid(String),
}

/// What a JetStream API request does that the host keeps count of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCall {
    /// Creates stream `.0` (or makes it again: `STREAM.CREATE`,
    /// `STREAM.RESTORE`).
    CreateStream(String),
    /// Deletes stream `.0`.
    DeleteStream(String),
    /// Anything else (including every subject outside the JetStream API).
    Other,
}

/// Who is asking: the plugin's grants, for a caller of `namespace`.
#[derive(Clone, Copy)]
pub struct Checker<'a> {
    /// The plugin's grants.
    pub grants: &'a SubjectGrants,
    /// The caller's namespace (a name; grants make it a token).
    pub namespace: &'a str,
}

impl Checker<'_> {
    /// Checks the subjects the body of a request (or publish) to `subject`
    /// names, and says what the request does. `subject` itself must have
    /// been checked against the grants already.
    pub fn check(&self, subject: &str, body: &[u8]) -> Result<ApiCall, Refused> {
        let Some(endpoint) = api_endpoint(subject) else {
            return Ok(ApiCall::Other);
        };
        let request = Request {
            checker: *self,
            subject,
            body,
        };
        match endpoint.as_slice() {
            ["STREAM", "CREATE", stream] => {
                request.stream_config(&request.object()?, stream, "")?;
                Ok(ApiCall::CreateStream(stream.to_string()))
            }
            ["STREAM", "UPDATE", stream] => {
                request.stream_config(&request.object()?, stream, "")?;
                Ok(ApiCall::Other)
            }
            ["STREAM", "RESTORE", stream] => {
                let body = request.object()?;
                let config = match field(&body, "config", "")? {
                    Some(Value::Object(config)) => config,
                    _ => return Err(request.invalid("", "`config` must be a stream configuration")),
                };
                request.stream_config(config, stream, "config.")?;
                Ok(ApiCall::CreateStream(stream.to_string()))
            }
            ["STREAM", "DELETE", stream] => Ok(ApiCall::DeleteStream(stream.to_string())),
            ["STREAM", "SNAPSHOT", _] => {
                request.deliver_subject(&request.object()?, "")?;
                Ok(ApiCall::Other)
            }
            ["STREAM", "TEMPLATE", "CREATE", ..] => Err(Refused::NotGranted(format!(
                "`{subject}`: stream templates create streams on their own, beyond the grants and the stream cap; they are not available to plugins"
            ))),
            ["CONSUMER", "CREATE", stream, ..] | ["CONSUMER", "DURABLE", "CREATE", stream, ..] => {
                request.consumer(&request.object()?, stream)?;
                Ok(ApiCall::Other)
            }
            _ => Ok(ApiCall::Other),
        }
    }
}

/// The tokens of a JetStream API subject after `$JS.API.` (or
/// `$JS.<domain>.API.`); `None` for any other subject.
fn api_endpoint(subject: &str) -> Option<Vec<&str>> {
    let tokens: Vec<&str> = subject.split('.').collect();
    match tokens.as_slice() {
        ["$JS", "API", rest @ ..] | ["$JS", _, "API", rest @ ..] => Some(rest.to_vec()),
        _ => None,
    }
}

/// One request being checked.
struct Request<'a> {
    checker: Checker<'a>,
    subject: &'a str,
    body: &'a [u8],
}

impl Request<'_> {
    fn invalid(&self, field: &str, why: &str) -> Refused {
        let at = if field.is_empty() {
            String::new()
        } else {
            format!(" (field `{field}`)")
        };
        Refused::Invalid(format!(
            "the body of `{}`{at} is refused: {why}",
            rules::shortened(self.subject)
        ))
    }

    fn not_granted(&self, field: &str, subject: &str, role: &str) -> Refused {
        Refused::NotGranted(format!(
            "field `{field}` of `{}` names `{}`, which this plugin is not granted {role}",
            rules::shortened(self.subject),
            rules::shortened(subject)
        ))
    }

    /// The body as a JSON object.
    fn object(&self) -> Result<Map<String, Value>, Refused> {
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(_) => Err(self.invalid("", "it is not a JSON object")),
            Err(e) => Err(self.invalid("", &format!("it is not JSON ({e})"))),
        }
    }

    /// `subject` (named by `field`) must be one the plugin may subscribe to.
    fn captured(&self, field: &str, subject: &str) -> Result<(), Refused> {
        rules::check(subject, Use::Subscribe).map_err(|e| self.invalid(field, &e.to_string()))?;
        if self.allows(subject) {
            Ok(())
        } else {
            Err(self.not_granted(field, subject, "to subscribe to"))
        }
    }

    /// `subject` (named by `field`) must be one the plugin may publish to
    /// (a pattern, such as a republish destination, must fit in a grant).
    fn published(&self, field: &str, subject: &str, usage: Use) -> Result<(), Refused> {
        rules::check(subject, usage).map_err(|e| self.invalid(field, &e.to_string()))?;
        if self.allows(subject) {
            Ok(())
        } else {
            Err(self.not_granted(field, subject, "to publish to"))
        }
    }

    fn allows(&self, subject: &str) -> bool {
        self.checker.grants.allows(self.checker.namespace, subject)
    }

    /// A stream configuration for stream `stream`, its fields named with
    /// `prefix`.
    fn stream_config(
        &self,
        config: &Map<String, Value>,
        stream: &str,
        prefix: &str,
    ) -> Result<(), Refused> {
        let name_field = format!("{prefix}name");
        if let Some(name) = self.string(config, "name", prefix)?
            && !name.is_empty()
            && name != stream
        {
            return Err(self.invalid(&name_field, "it is not the stream the subject names"));
        }
        let mirror = non_null(field(config, "mirror", prefix)?);
        let sources = non_null(field(config, "sources", prefix)?);
        let subjects_field = format!("{prefix}subjects");
        let subjects = match non_null(field(config, "subjects", prefix)?) {
            None => Vec::new(),
            Some(Value::Array(subjects)) => subjects.iter().collect(),
            Some(_) => return Err(self.invalid(&subjects_field, "it must be a list of subjects")),
        };
        for (i, subject) in subjects.iter().enumerate() {
            let field = format!("{subjects_field}[{i}]");
            match subject {
                Value::String(subject) => self.captured(&field, subject)?,
                _ => return Err(self.invalid(&field, "a subject must be a string")),
            }
        }
        let sourced =
            mirror.is_some() || matches!(sources, Some(Value::Array(list)) if !list.is_empty());
        if subjects.is_empty() && !sourced {
            // The server gives such a stream one subject: its name.
            self.captured(&name_field, stream)?;
        }
        if let Some(republish) = non_null(field(config, "republish", prefix)?) {
            let republish_prefix = format!("{prefix}republish.");
            let Value::Object(republish) = republish else {
                return Err(self.invalid(&format!("{prefix}republish"), "it must be an object"));
            };
            match self.string(republish, "dest", &republish_prefix)? {
                Some(dest) => {
                    self.published(&format!("{republish_prefix}dest"), dest, Use::Subscribe)?
                }
                None => {
                    return Err(self.invalid(
                        &format!("{republish_prefix}dest"),
                        "a republish needs a destination",
                    ));
                }
            }
        }
        if let Some(mirror) = mirror {
            self.source(mirror, &format!("{prefix}mirror"))?;
        }
        match sources {
            None => {}
            Some(Value::Array(list)) => {
                for (i, source) in list.iter().enumerate() {
                    self.source(source, &format!("{prefix}sources[{i}]"))?;
                }
            }
            Some(_) => {
                return Err(self.invalid(&format!("{prefix}sources"), "it must be a list"));
            }
        }
        Ok(())
    }

    /// A mirror or source (named `at`): a stream of this account whose info
    /// the plugin is granted.
    fn source(&self, source: &Value, at: &str) -> Result<(), Refused> {
        let Value::Object(source) = source else {
            return Err(self.invalid(at, "it must be an object"));
        };
        let prefix = format!("{at}.");
        if non_null(field(source, "external", &prefix)?).is_some() {
            return Err(Refused::NotGranted(format!(
                "field `{at}.external` of `{}`: streams of another account or domain cannot be sourced by a plugin",
                rules::shortened(self.subject)
            )));
        }
        let name_field = format!("{at}.name");
        let name = match self.string(source, "name", &prefix)? {
            Some(name) if valid_stream_name(name) => name,
            _ => return Err(self.invalid(&name_field, "it must name a stream")),
        };
        if self.allows(&format!("$JS.API.STREAM.INFO.{name}")) {
            Ok(())
        } else {
            Err(Refused::NotGranted(format!(
                "field `{name_field}` of `{}` names stream `{}`, which this plugin is not granted (`$JS.API.STREAM.INFO.{}`)",
                rules::shortened(self.subject),
                rules::shortened(name),
                rules::shortened(name)
            )))
        }
    }

    /// A consumer request for stream `stream`.
    fn consumer(&self, body: &Map<String, Value>, stream: &str) -> Result<(), Refused> {
        if let Some(name) = self.string(body, "stream_name", "")?
            && name != stream
        {
            return Err(self.invalid("stream_name", "it is not the stream the subject names"));
        }
        match non_null(field(body, "config", "")?) {
            None => Ok(()),
            Some(Value::Object(config)) => self.deliver_subject(config, "config."),
            Some(_) => Err(self.invalid("config", "it must be an object")),
        }
    }

    /// A `deliver_subject` (fields named with `prefix`): where the server
    /// publishes a stream's messages.
    fn deliver_subject(&self, object: &Map<String, Value>, prefix: &str) -> Result<(), Refused> {
        match self.string(object, "deliver_subject", prefix)? {
            None | Some("") => Ok(()),
            Some(subject) => {
                self.published(&format!("{prefix}deliver_subject"), subject, Use::Publish)
            }
        }
    }

    /// Field `name` of `object` as a string, if present and not null.
    fn string<'v>(
        &self,
        object: &'v Map<String, Value>,
        name: &str,
        prefix: &str,
    ) -> Result<Option<&'v str>, Refused> {
        match non_null(field(object, name, prefix)?) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(self.invalid(&format!("{prefix}{name}"), "it must be a string")),
        }
    }
}

/// Field `name` of `object`, looked up as Go's `encoding/json` does
/// (case-insensitively, `ſ` and the Kelvin sign included); two keys that
/// both match are refused, since the server may read either.
fn field<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<&'v Value>, Refused> {
    let mut found = None;
    for (key, value) in object {
        if folded(key) == name {
            if found.is_some() {
                return Err(Refused::Invalid(format!(
                    "the body names field `{prefix}{name}` twice (in different cases); it is refused as ambiguous"
                )));
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// `key` folded as Go's JSON decoder compares field names, for the ASCII
/// names looked up here.
fn folded(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn non_null(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// What the server accepts as a stream name (and what keeps a subject
/// built from it one token).
fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control())
}

#[cfg(test)]
#[path = "jetstream_grants_tests.rs"]
mod tests;
