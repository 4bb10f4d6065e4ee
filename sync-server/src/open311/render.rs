//! One answer, two formats: Open311 documents are built once as a small tree
//! of named fields and written out as JSON or XML, so the two can never list
//! different fields. XML goes through quick-xml's writer, which escapes text
//! and closes every element it opens.

use std::io::Cursor;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// The answer format, from the path's extension (`requests.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// Splits `name.json` / `name.xml` into the name and the format.
    pub fn split(file: &str) -> Result<(&str, Format), Open311Error> {
        let Some((stem, ext)) = file.rsplit_once('.') else {
            return Err(Open311Error::not_found(
                "the path must end in .json or .xml",
            ));
        };
        match ext {
            "json" => Ok((stem, Format::Json)),
            "xml" => Ok((stem, Format::Xml)),
            _ => Err(Open311Error::not_found("the format must be json or xml")),
        }
    }
}

/// A field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// JSON `null`, an empty XML element.
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Fields in the order they are written.
    Object(Vec<(&'static str, Value)>),
    /// A JSON array; in XML, each entry is an element named `item`.
    List {
        item: &'static str,
        items: Vec<Value>,
    },
}

impl Value {
    pub fn opt_str(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::Str(s.into()))
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Float(v) => s.serialize_f64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            Value::List { items, .. } => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// A whole answer: the XML root element's name and the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: &'static str,
    pub body: Value,
}

impl Document {
    /// A list answer: `[…]` in JSON, `<root><item>…</item></root>` in XML.
    pub fn list(root: &'static str, item: &'static str, items: Vec<Value>) -> Document {
        Document {
            root,
            body: Value::List { item, items },
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.body).unwrap_or_else(|_| "[]".to_string())
    }

    pub fn to_xml(&self) -> String {
        let mut writer = Writer::new(Cursor::new(Vec::new()));
        let written = writer
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
            .and_then(|_| write_value(&mut writer, self.root, &self.body));
        if let Err(e) = written {
            // Writing to memory fails only if quick-xml itself does.
            tracing::error!(error = %e, "writing Open311 XML failed");
        }
        String::from_utf8(writer.into_inner().into_inner()).unwrap_or_default()
    }

    pub fn into_response(self, format: Format, status: StatusCode) -> Response {
        match format {
            Format::Json => (
                status,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                self.to_json(),
            )
                .into_response(),
            Format::Xml => (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                self.to_xml(),
            )
                .into_response(),
        }
    }
}

fn write_value<W: std::io::Write>(
    writer: &mut Writer<W>,
    name: &str,
    value: &Value,
) -> std::io::Result<()> {
    let element = writer.create_element(name);
    let text = match value {
        Value::Null => {
            element.write_empty()?;
            return Ok(());
        }
        Value::Str(s) => s.clone(),
        Value::Int(v) => v.to_string(),
        Value::Float(v) => v.to_string(),
        Value::Bool(v) => v.to_string(),
        Value::Object(fields) => {
            element.write_inner_content(|w| {
                fields
                    .iter()
                    .try_for_each(|(name, value)| write_value(w, name, value))
            })?;
            return Ok(());
        }
        Value::List { item, items } => {
            element.write_inner_content(|w| {
                items
                    .iter()
                    .try_for_each(|value| write_value(w, item, value))
            })?;
            return Ok(());
        }
    };
    element.write_text_content(BytesText::new(&text))?;
    Ok(())
}

/// An error as GeoReport v2 answers it: `[{"code": 400, "description": "…"}]`,
/// `<errors><error><code>400</code><description>…</description></error></errors>`.
/// The code is the HTTP status; the description names the field and the reason,
/// never the refused value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: String,
}

impl Open311Error {
    pub fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            status,
            description: description.into(),
        }
    }

    /// A parameter that is missing or refused.
    pub fn field(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("{field}: {reason}"))
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }

    pub fn document(&self) -> Document {
        Document::list(
            "errors",
            "error",
            vec![Value::Object(vec![
                ("code", Value::Int(i64::from(self.status.as_u16()))),
                ("description", Value::str(self.description.clone())),
            ])],
        )
    }

    pub fn into_response(self, format: Format) -> Response {
        let status = self.status;
        self.document().into_response(format, status)
    }
}

impl From<crate::error::AppError> for Open311Error {
    fn from(e: crate::error::AppError) -> Self {
        Self::new(e.status, e.body.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tree_writes_both_formats_in_field_order() {
        let doc = Document::list(
            "service_requests",
            "request",
            vec![Value::Object(vec![
                ("service_request_id", Value::str("a-1")),
                ("status", Value::str("open")),
                ("agency_responsible", Value::Null),
                ("lat", Value::Float(42.87)),
            ])],
        );
        assert_eq!(
            doc.to_json(),
            r#"[{"service_request_id":"a-1","status":"open","agency_responsible":null,"lat":42.87}]"#
        );
        assert_eq!(
            doc.to_xml(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests><request>\
             <service_request_id>a-1</service_request_id><status>open</status>\
             <agency_responsible/><lat>42.87</lat></request></service_requests>"
        );
    }

    #[test]
    fn xml_text_is_escaped() {
        let doc = Document {
            root: "r",
            body: Value::Object(vec![("d", Value::str("<b>&\"x\"</b>"))]),
        };
        let xml = doc.to_xml();
        assert!(
            xml.contains("<d>&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;</d>"),
            "{xml}"
        );
    }

    #[test]
    fn errors_follow_the_spec_shape() {
        let e = Open311Error::field("service_code", "is required");
        assert_eq!(
            e.document().to_json(),
            r#"[{"code":400,"description":"service_code: is required"}]"#
        );
        assert!(e
            .document()
            .to_xml()
            .ends_with("<errors><error><code>400</code><description>service_code: is required</description></error></errors>"));
    }

    #[test]
    fn the_extension_picks_the_format() {
        assert_eq!(
            Format::split("requests.json").unwrap(),
            ("requests", Format::Json)
        );
        assert_eq!(Format::split("a.b.xml").unwrap(), ("a.b", Format::Xml));
        assert_eq!(
            Format::split("requests").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            Format::split("requests.html").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }
}
