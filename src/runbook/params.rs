//! A runbook's typed parameters: what a file declares, and the check every value passes
//! before anything reaches a database. A value that passes becomes a `Bind`, sent to the
//! server as a bound parameter (never spliced into the statement).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::exec::Bind;

/// The types a parameter may have.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamType {
    Text,
    Integer,
    Numeric,
    Boolean,
    Date,
    Timestamp,
    Uuid,
    /// One of these values.
    Enum(Vec<String>),
}

impl ParamType {
    pub fn name(&self) -> &'static str {
        match self {
            ParamType::Text => "text",
            ParamType::Integer => "integer",
            ParamType::Numeric => "numeric",
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
            ParamType::Timestamp => "timestamp",
            ParamType::Uuid => "uuid",
            ParamType::Enum(_) => "enum",
        }
    }

    pub fn parse(name: &str, values: Option<Vec<String>>) -> Result<ParamType, String> {
        Ok(match (name, values) {
            ("enum", Some(v)) if !v.is_empty() => ParamType::Enum(v),
            ("enum", _) => return Err("an enum parameter needs `values`".into()),
            (_, Some(_)) => return Err("only an enum parameter has `values`".into()),
            ("text", None) => ParamType::Text,
            ("integer", None) => ParamType::Integer,
            ("numeric", None) => ParamType::Numeric,
            ("boolean", None) => ParamType::Boolean,
            ("date", None) => ParamType::Date,
            ("timestamp", None) => ParamType::Timestamp,
            ("uuid", None) => ParamType::Uuid,
            (other, None) => {
                return Err(format!(
                    "unknown type `{other}` (text, integer, numeric, boolean, date, timestamp, uuid, enum)"
                ));
            }
        })
    }
}

/// A parameter as the file declares it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub required: Option<bool>,
    pub default: Option<toml::Value>,
    pub pattern: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub values: Option<Vec<String>>,
    pub description: Option<String>,
}

/// A declared parameter, ready to check values against.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Param {
    pub name: String,
    #[serde(skip)]
    pub ty: ParamType,
    /// `text`, `integer`, `numeric`, `boolean`, `date`, `timestamp`, `uuid` or `enum`.
    #[serde(rename = "type")]
    pub type_name: &'static str,
    /// An enum's values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Without a value (and without a default) the run is refused.
    pub required: bool,
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
    /// The whole value must match (text parameters).
    pub pattern: Option<String>,
    /// Bounds (integer and numeric parameters).
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub description: String,
    #[serde(skip)]
    regex: Option<regex_lite::Regex>,
}

impl Param {
    /// Builds a parameter from its declaration; the default must pass its own checks.
    pub fn new(raw: RawParam) -> Result<Param, String> {
        let ty = ParamType::parse(&raw.ty, raw.values)?;
        if raw.pattern.is_some() && ty != ParamType::Text {
            return Err("only a text parameter has a `pattern`".into());
        }
        let numeric = matches!(ty, ParamType::Integer | ParamType::Numeric);
        if (raw.min.is_some() || raw.max.is_some()) && !numeric {
            return Err("only integer and numeric parameters have `min` / `max`".into());
        }
        if let (Some(lo), Some(hi)) = (raw.min, raw.max)
            && lo > hi
        {
            return Err(format!("min {lo} is above max {hi}"));
        }
        let regex = match &raw.pattern {
            Some(p) => Some(
                regex_lite::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| format!("`pattern` is not a regular expression: {e}"))?,
            ),
            None => None,
        };
        let default = raw.default.map(toml_to_json);
        let values = match &ty {
            ParamType::Enum(v) => v.clone(),
            _ => Vec::new(),
        };
        let mut param = Param {
            name: raw.name,
            type_name: ty.name(),
            values,
            ty,
            required: raw.required.unwrap_or(default.is_none()),
            default: None,
            pattern: raw.pattern,
            min: raw.min,
            max: raw.max,
            description: raw.description.unwrap_or_default(),
            regex,
        };
        if let Some(d) = default {
            param
                .check(&d)
                .map_err(|e| format!("the default does not fit: {e}"))?;
            param.default = Some(d);
        }
        Ok(param)
    }

    /// The value to bind for `given` (or the default, or NULL when optional).
    pub fn bind(&self, given: Option<&Value>) -> Result<Bind, String> {
        match given.filter(|v| !v.is_null()).or(self.default.as_ref()) {
            Some(v) => self.check(v),
            None if self.required => Err("is required".into()),
            None => Ok(Bind::Null),
        }
    }

    /// Checks one value against the type, pattern and bounds.
    fn check(&self, v: &Value) -> Result<Bind, String> {
        let text = match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        };
        let bind = match &self.ty {
            ParamType::Text => Bind::Text(text.ok_or("must be a string")?.to_owned()),
            ParamType::Integer => Bind::Int(integer(v)?),
            ParamType::Numeric => Bind::Decimal(decimal(v)?),
            ParamType::Boolean => Bind::Bool(boolean(v)?),
            ParamType::Date => Bind::Text(date(text.ok_or("must be a date string")?)?),
            ParamType::Timestamp => {
                Bind::Text(timestamp(text.ok_or("must be a timestamp string")?)?)
            }
            ParamType::Uuid => {
                let s = text.ok_or("must be a UUID string")?;
                let id = uuid::Uuid::parse_str(s).map_err(|_| format!("`{s}` is not a UUID"))?;
                Bind::Text(id.hyphenated().to_string())
            }
            ParamType::Enum(values) => {
                let s = text.ok_or("must be a string")?;
                if !values.iter().any(|x| x == s) {
                    return Err(format!("`{s}` is not one of {}", values.join(", ")));
                }
                Bind::Text(s.to_owned())
            }
        };
        self.bounds(&bind)?;
        Ok(bind)
    }

    fn bounds(&self, bind: &Bind) -> Result<(), String> {
        if let (Some(re), Bind::Text(s)) = (&self.regex, bind)
            && !re.is_match(s)
        {
            return Err(format!(
                "`{s}` does not match the pattern {}",
                self.pattern.as_deref().unwrap_or_default()
            ));
        }
        let n = match bind {
            Bind::Int(i) => *i as f64,
            Bind::Decimal(d) => d.parse::<f64>().unwrap_or(f64::NAN),
            _ => return Ok(()),
        };
        if self.min.is_some_and(|lo| n < lo) || self.max.is_some_and(|hi| n > hi) {
            let range = |b: Option<f64>| b.map_or("…".to_owned(), |b| b.to_string());
            return Err(format!(
                "{n} is outside {}..{}",
                range(self.min),
                range(self.max)
            ));
        }
        Ok(())
    }
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::from(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::from(b),
        toml::Value::Datetime(d) => Value::from(d.to_string()),
        // Arrays and tables fit no parameter type: the check refuses them.
        toml::Value::Array(_) | toml::Value::Table(_) => Value::Array(Vec::new()),
    }
}

fn integer(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an integer")),
        _ => Err("must be an integer".into()),
    }
}

/// An exact decimal: digits, optionally a sign and a fraction.
fn decimal(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return Err("must be a number".into()),
    };
    let digits = s.strip_prefix('-').unwrap_or(&s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if all_digits(whole) && all_digits(fraction) {
        Ok(s)
    } else {
        Err(format!("`{s}` is not a decimal number"))
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// `YYYY-MM-DD`, a real date.
fn date(s: &str) -> Result<String, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, format)
        .map(|d| d.format(format).unwrap_or_default())
        .map_err(|_| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

/// RFC 3339 (converted to UTC) or `YYYY-MM-DD HH:MM:SS[.ffffff]`; bound as
/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, which both databases read.
fn timestamp(s: &str) -> Result<String, String> {
    let out = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
    );
    let bad = || format!("`{s}` is not a timestamp (RFC 3339 or YYYY-MM-DD HH:MM:SS)");
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        let utc = t.to_offset(time::UtcOffset::UTC);
        return utc.format(out).map_err(|_| bad());
    }
    let naive = s.replacen('T', " ", 1);
    for form in [
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"
        ),
        // A browser's datetime-local leaves the seconds out when they are zero.
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ] {
        if let Ok(t) = time::PrimitiveDateTime::parse(&naive, form) {
            return t.format(out).map_err(|_| bad());
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(ty: &str, extra: &str) -> Param {
        let text = format!("name = \"p\"\ntype = \"{ty}\"\n{extra}");
        Param::new(toml::from_str(&text).expect("test input")).expect("test input")
    }

    #[test]
    fn each_type_takes_its_values_and_refuses_others() {
        let cases: &[(&str, &str, Value, Result<Bind, ()>)] = &[
            (
                "text",
                "",
                json!("1; drop table t"),
                Ok(Bind::Text("1; drop table t".into())),
            ),
            ("text", "", json!(5), Err(())),
            ("integer", "min = 1\nmax = 10", json!(7), Ok(Bind::Int(7))),
            ("integer", "min = 1\nmax = 10", json!("7"), Ok(Bind::Int(7))),
            ("integer", "min = 1\nmax = 10", json!(11), Err(())),
            ("integer", "", json!("7; drop"), Err(())),
            ("integer", "", json!(1.5), Err(())),
            (
                "numeric",
                "",
                json!("12.50"),
                Ok(Bind::Decimal("12.50".into())),
            ),
            ("numeric", "", json!("1e9"), Err(())),
            ("boolean", "", json!(true), Ok(Bind::Bool(true))),
            ("boolean", "", json!("yes"), Err(())),
            (
                "date",
                "",
                json!("2026-02-28"),
                Ok(Bind::Text("2026-02-28".into())),
            ),
            ("date", "", json!("2026-02-30"), Err(())),
            (
                "timestamp",
                "",
                json!("2026-01-02T03:04:05+02:00"),
                Ok(Bind::Text("2026-01-02 01:04:05.000000".into())),
            ),
            (
                "timestamp",
                "",
                json!("2026-01-02 03:04:05"),
                Ok(Bind::Text("2026-01-02 03:04:05.000000".into())),
            ),
            ("timestamp", "", json!("yesterday"), Err(())),
            (
                "uuid",
                "",
                json!("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"),
                Ok(Bind::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())),
            ),
            ("uuid", "", json!("' or 1=1 --"), Err(())),
            (
                "enum",
                "values = [\"a\", \"b\"]",
                json!("b"),
                Ok(Bind::Text("b".into())),
            ),
            ("enum", "values = [\"a\", \"b\"]", json!("c"), Err(())),
            (
                "text",
                "pattern = \"[a-z]+\"",
                json!("abc"),
                Ok(Bind::Text("abc".into())),
            ),
            ("text", "pattern = \"[a-z]+\"", json!("abc1"), Err(())),
        ];
        for (ty, extra, value, want) in cases {
            let got = param(ty, extra).bind(Some(value));
            match want {
                Ok(b) => assert_eq!(got.as_ref(), Ok(b), "{ty} {value}"),
                Err(()) => assert!(got.is_err(), "{ty} {value} passed as {got:?}"),
            }
        }
    }

    #[test]
    fn required_defaults_and_declaration_mistakes() {
        assert!(param("integer", "").bind(None).is_err());
        assert_eq!(param("integer", "default = 3").bind(None), Ok(Bind::Int(3)));
        assert_eq!(param("text", "required = false").bind(None), Ok(Bind::Null));
        for (ty, extra) in [
            ("integer", "default = \"x\""),
            ("enum", ""),
            ("text", "min = 1"),
            ("integer", "pattern = \"a\""),
            ("integer", "min = 5\nmax = 1"),
            ("text", "pattern = \"(\""),
            ("float", ""),
        ] {
            let text = format!("name = \"p\"\ntype = \"{ty}\"\n{extra}");
            let raw: RawParam = toml::from_str(&text).expect("test input");
            assert!(Param::new(raw).is_err(), "{ty} {extra}");
        }
    }
}
