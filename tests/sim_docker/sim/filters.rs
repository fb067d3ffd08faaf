//! Docker's `filters` query parameter: a JSON object of filter names to values, either as a
//! list (`{"label":["a=b"]}`, what bollard sends) or as a set (`{"label":{"a=b":true}}`, what
//! the Docker CLI sends). Values of one name are alternatives, except `label`, where every
//! value must hold, as in Docker.

use std::collections::BTreeMap;

use super::error::Refusal;

/// Parsed filters, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the parameter, refusing names not in `known` as Docker does ("invalid filter").
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Filters, Refusal> {
        let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
            return Ok(Filters::default());
        };
        let bad = |why: String| Refusal::BadRequest(format!("invalid filter: {why}"));
        let json: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| bad(format!("{raw}: {e}")))?;
        let object = json
            .as_object()
            .ok_or_else(|| bad(format!("{raw}: not an object")))?;
        let mut out = BTreeMap::new();
        for (name, values) in object {
            if !known.contains(&name.as_str()) {
                return Err(Refusal::BadRequest(format!("invalid filter '{name}'")));
            }
            let values: Vec<String> = match values {
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad(format!("{name}: values must be strings")))?,
                serde_json::Value::Object(set) => set
                    .iter()
                    .filter(|(_, on)| on.as_bool() == Some(true))
                    .map(|(v, _)| v.clone())
                    .collect(),
                _ => return Err(bad(format!("{name}: expected a list or a set"))),
            };
            out.insert(name.clone(), values);
        }
        Ok(Filters(out))
    }

    /// The values given for `name` (none when the filter is absent).
    pub fn get(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    /// True when `name` is absent or `test` holds for one of its values.
    pub fn any(&self, name: &str, test: impl Fn(&str) -> bool) -> bool {
        let values = self.get(name);
        values.is_empty() || values.iter().any(|v| test(v))
    }

    /// True when every `label` filter holds for `lookup` (a label's value by key): `key` asks
    /// for the label to be there, `key=value` for that value.
    pub fn labels_match<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.get("label")
            .iter()
            .all(|wanted| match wanted.split_once('=') {
                Some((key, value)) => lookup(key) == Some(value),
                None => lookup(wanted).is_some(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_are_all_required_and_both_json_forms_parse() {
        let labels = [("io.berth.managed", "true"), ("app", "web")];
        let lookup = |k: &str| labels.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let list = Filters::parse(
            Some(r#"{"label":["io.berth.managed=true","app"]}"#),
            &["label"],
        )
        .unwrap();
        assert!(list.labels_match(lookup));
        let set = Filters::parse(
            Some(r#"{"label":{"io.berth.managed=true":true,"app=db":true}}"#),
            &["label"],
        )
        .unwrap();
        assert!(!set.labels_match(lookup));
        assert!(Filters::parse(Some(r#"{"colour":["red"]}"#), &["label"]).is_err());
    }
}
