//! The JSON Schema of `results.json` (`schema/results.schema.json`) and a validator for
//! the subset of JSON Schema (2020-12) it uses: `type`, `const`, `enum`, `properties`,
//! `required`, `additionalProperties`, `items`, `minimum`, `oneOf` and local `$ref`s
//! (`#/$defs/NAME`). Any other keyword in a schema is an error, so the schema cannot
//! silently say more than is checked.

use serde_json::Value;

/// The schema text.
pub const SCHEMA: &str = include_str!("../schema/results.schema.json");

const ANNOTATIONS: &[&str] = &["$schema", "$id", "title", "description", "$defs"];

/// Validates `doc` against the results schema; returns every violation found, as
/// `path: problem` lines (`$.suites[2].measurements[0].ratio: ...`).
pub fn validate_results(doc: &Value) -> Result<(), Vec<String>> {
    let schema: Value = serde_json::from_str(SCHEMA).map_err(|e| vec![format!("schema: {e}")])?;
    validate(&schema, doc)
}

/// Validates `doc` against `schema` (with the subset above).
pub fn validate(schema: &Value, doc: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check(schema, schema, doc, "$", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (k, sv) in s {
        match k.as_str() {
            "$ref" => {
                let target = sv
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .and_then(|name| root.get("$defs")?.get(name));
                match target {
                    Some(t) => check(root, t, v, path, errors),
                    None => errors.push(format!("{path}: unresolvable $ref {sv}")),
                }
            }
            "type" => {
                let types: Vec<&str> = match sv {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !types.iter().any(|t| type_ok(t, v)) {
                    errors.push(format!("{path}: expected {}, got {v}", types.join(" or ")));
                }
            }
            "const" => {
                if v != sv {
                    errors.push(format!("{path}: expected {sv}, got {v}"));
                }
            }
            "enum" => {
                if !sv.as_array().is_some_and(|a| a.contains(v)) {
                    errors.push(format!("{path}: {v} is not one of {sv}"));
                }
            }
            "minimum" => {
                if let (Some(x), Some(min)) = (v.as_f64(), sv.as_f64())
                    && x < min
                {
                    errors.push(format!("{path}: {x} is below the minimum {min}"));
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in sv
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !o.contains_key(r) {
                            errors.push(format!("{path}: missing required property {r:?}"));
                        }
                    }
                }
            }
            "properties" => {
                if let (Some(o), Some(props)) = (v.as_object(), sv.as_object()) {
                    for (name, ps) in props {
                        if let Some(x) = o.get(name) {
                            check(root, ps, x, &format!("{path}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(o) = v.as_object() {
                    let known = s.get("properties").and_then(Value::as_object);
                    for (name, x) in o {
                        if known.is_some_and(|k| k.contains_key(name)) {
                            continue;
                        }
                        match sv {
                            Value::Bool(false) => {
                                errors.push(format!("{path}: unexpected property {name:?}"))
                            }
                            Value::Bool(true) => {}
                            other => check(root, other, x, &format!("{path}.{name}"), errors),
                        }
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, x) in a.iter().enumerate() {
                        check(root, sv, x, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "oneOf" => {
                let matching = sv
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|alt| {
                        let mut e = Vec::new();
                        check(root, alt, v, path, &mut e);
                        e.is_empty()
                    })
                    .count();
                if matching != 1 {
                    errors.push(format!(
                        "{path}: matches {matching} of the oneOf alternatives (must match 1)"
                    ));
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            other => errors.push(format!("{path}: schema keyword {other:?} is not supported")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_parses_and_uses_only_supported_keywords() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap_or(Value::Null);
        assert!(schema.is_object());
        // Validating the schema's own sub-schemas against an empty value walks every
        // keyword; none may be unsupported.
        let mut errors = Vec::new();
        for def in schema["$defs"].as_object().into_iter().flatten() {
            check(&schema, def.1, &Value::Null, "$", &mut errors);
        }
        assert!(
            !errors.iter().any(|e| e.contains("not supported")),
            "{errors:?}"
        );
    }

    #[test]
    fn violations_are_reported_with_paths() {
        let schema = json!({
            "type": "object",
            "required": ["a", "b"],
            "additionalProperties": false,
            "properties": {
                "a": {"type": "integer", "minimum": 0},
                "b": {"type": "array", "items": {"enum": ["x", "y"]}},
                "c": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/s"}]}
            },
            "$defs": {"s": {"type": "string"}}
        });
        assert!(validate(&schema, &json!({"a": 1, "b": ["x"], "c": "ok"})).is_ok());
        assert!(validate(&schema, &json!({"a": 1, "b": [], "c": null})).is_ok());
        let e = validate(&schema, &json!({"a": -1.5, "b": ["z"], "c": 3, "d": 0}))
            .err()
            .unwrap_or_default();
        let all = e.join("\n");
        assert!(all.contains("$.a: expected integer"), "{all}");
        assert!(all.contains("$.a: -1.5 is below the minimum 0"), "{all}");
        assert!(all.contains("$.b[0]: \"z\" is not one of"), "{all}");
        assert!(all.contains("$.c: matches 0 of the oneOf"), "{all}");
        assert!(all.contains("unexpected property \"d\""), "{all}");
        let e = validate(&schema, &json!({})).err().unwrap_or_default();
        assert_eq!(e.len(), 2);
        assert!(validate(&json!({"pattern": "x"}), &json!("x")).is_err());
    }
}
