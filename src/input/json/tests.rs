use super::*;

fn parse(text: &str) -> Node {
    read(text).unwrap_or_else(|d| panic!("{}", d.message))
}

fn error(text: &str) -> (String, u64, u64) {
    let d = read(text).expect_err("should not parse");
    let at = d.at.expect("a place").pos;
    (d.message, at.line, at.column)
}

#[test]
fn every_node_knows_its_line_and_column() {
    let root = parse("{\n  \"a\": [1, \"é\", {\"b\": true}],\n  \"c\": null\n}");
    assert_eq!(root.pos, Pos { line: 1, column: 1 });
    let Value::Map(entries) = &root.value else { panic!() };
    assert_eq!(entries[0].0.pos, Pos { line: 2, column: 3 });
    let Value::Seq(items) = &entries[0].1.value else {
        panic!()
    };
    assert_eq!(items[1].pos, Pos { line: 2, column: 12 });
    assert_eq!(items[2].pos, Pos { line: 2, column: 17 }, "columns count characters");
    assert_eq!(
        entries[1].1,
        Node {
            pos: Pos { line: 3, column: 8 },
            value: Value::Null
        }
    );
}

#[test]
fn columns_on_one_long_line_are_counted_from_the_last_one() {
    let text = format!("[{}]", vec!["\"ü\""; 2000].join(","));
    let Value::Seq(items) = parse(&text).value else {
        panic!()
    };
    assert_eq!(items[1999].pos.column, 2 + 4 * 1999);
}

#[test]
fn strings_end_where_they_end_at_every_offset() {
    for n in 0..20 {
        let run = "a".repeat(n);
        for (tail, want) in [
            ("\"", Some(run.clone())),
            ("\\\"x\"", Some(format!("{run}\"x"))),
            ("é\"", Some(format!("{run}é"))),
            ("\u{1}\"", None),
            ("\\q\"", None),
        ] {
            let text = format!("[\"{run}{tail}, \"{run}{tail}]");
            let got = read(&text).ok().map(|root| match root.value {
                Value::Seq(items) => match &items[0].value {
                    Value::Str(s) => s.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            });
            assert_eq!(got, want, "{text:?}");
            let filtered = read_filtered(&format!("{{\"k\": {text}}}"), |_| Keep::Skip).is_ok();
            assert_eq!(filtered, want.is_some(), "skipped {text:?}");
        }
    }
}

#[test]
fn columns_after_a_wide_character_count_characters() {
    let root = parse("{\"a\": \"ééé\", \"b\": 1}\n{\"x\": 1}".split('\n').next().unwrap());
    let Value::Map(entries) = &root.value else { panic!() };
    assert_eq!(entries[1].0.pos, Pos { line: 1, column: 14 });
    let root = parse("[\n        \"é\", 1,\n         2]");
    let Value::Seq(items) = &root.value else { panic!() };
    assert_eq!(items[1].pos, Pos { line: 2, column: 14 });
    assert_eq!(items[2].pos, Pos { line: 3, column: 10 }, "a new line starts over");
}

#[test]
fn documents_one_after_another_are_read_each_with_their_items_first() {
    let text = "{\"apiVersion\": \"v1\", \"items\": [{\"kind\": \"A\", \"typo\": [1]}, 2], \"x\": {\"y\": 1}}\n{\"kind\":\"B\"}";
    let mut seen = Vec::new();
    read_each(
        text,
        |k| {
            if k == "typo" || k == "x" {
                Keep::Skip
            } else {
                Keep::Field
            }
        },
        true,
        &mut |read| {
            seen.push(match read {
                Read::Item(node) => format!("item {node:?}"),
                Read::Document(node) => format!("document {node:?}"),
            })
        },
    )
    .unwrap();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert!(seen[0].starts_with("item") && seen[0].contains("\"typo\"") && seen[0].contains("Null"));
    assert!(seen[1].starts_with("item") && seen[1].contains("Int(2)"));
    // The skipped top-level key is kept as a null; the list is left empty.
    assert!(seen[2].contains("\"x\"") && seen[2].contains("Seq([])") && !seen[2].contains("\"y\""));
    assert!(seen[3].contains("line: 2"), "{}", seen[3]);
    let broken = "{\"a\": 1}\n{\"a\": 1,}";
    let d = read_each(broken, |_| Keep::Field, true, &mut |_| {}).unwrap_err();
    assert_eq!(d.message, "invalid JSON: key must be a string");
    assert_eq!(d.at.unwrap().pos.line, 2, "placed in the second document");
}

#[test]
fn scalars_read_as_json_says() {
    let Value::Seq(items) = parse(r#"[-0, 12, 1.5, 2e3, "a\"\u00e9\n", false, 99999999999999999999]"#).value else {
        panic!()
    };
    let values: Vec<Value> = items.into_iter().map(|n| n.value).collect();
    assert_eq!(
        values,
        vec![
            Value::Int(0),
            Value::Int(12),
            Value::Float(1.5),
            Value::Float(2000.0),
            Value::Str("a\"é\n".into()),
            Value::Bool(false),
            Value::Float(1e20),
        ]
    );
}

#[test]
fn syntax_errors_are_serde_json_s() {
    assert_eq!(
        error("{\n  \"a\": 1,\n}"),
        ("invalid JSON: key must be a string".into(), 3, 1)
    );
    assert_eq!(error("[1,\n 2,]"), ("invalid JSON: expected value".into(), 2, 4));
    assert_eq!(error("{\"a\" 1}"), ("invalid JSON: expected `:`".into(), 1, 6));
    assert_eq!(error("[01]").0, "invalid JSON: invalid number");
    assert_eq!(error("{} x").0, "invalid JSON: trailing characters");
    assert_eq!(error("[1e999]").0, "invalid JSON: number out of range");
    assert_eq!(
        error("[\"a\nb\"]").0,
        "invalid JSON: control character (\\u0000-\\u001F) found while parsing a string"
    );
}

#[test]
fn a_key_written_twice_is_refused_in_small_and_big_mappings() {
    assert_eq!(error("{\"a\": 1,\n \"a\": 2}"), ("duplicate key `a`".into(), 2, 2));
    let keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\": 1")).collect();
    let text = format!("{{{}, \"k39\": 2}}", keys.join(", "));
    assert_eq!(error(&text).0, "duplicate key `k39`");
    assert!(read(&format!("{{{}}}", keys.join(", "))).is_ok());
}

#[test]
fn nesting_is_limited_as_in_yaml() {
    let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(read(&ok).is_ok());
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    let (message, line, column) = error(&deep);
    assert!(message.contains("deeper than 64"), "{message}");
    assert_eq!((line, column), (1, MAX_DEPTH as u64 + 1));
}
