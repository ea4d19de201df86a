use super::save::MAX_COMMENT;
use super::*;

#[test]
fn probabilities_print_as_iptables_save_does() {
    let p = |x: f64| format!("{:.11}", probability_of(stored_probability(x)));
    assert_eq!(p(1.0 / 2.0), "0.50000000000");
    assert_eq!(p(1.0 / 3.0), "0.33333333349");
    assert_eq!(p(1.0 / 5.0), "0.20000000019");
    assert_eq!(p(1.0 / 6.0), "0.16666666651");
}

/// iptables-restore splits a rule line into words at spaces outside double quotes, takes a
/// backslash as escaping the next character, and ends the rule at a line break: a comment
/// from a hostile name must stay one word on one line.
#[test]
fn a_hostile_comment_stays_one_word_on_one_line() {
    let hostile = [
        "x\" -j ACCEPT -m comment --comment \"y",
        "a\nCOMMIT\n*filter",
        "back\\\" -j DROP",
        "\u{1b}[2J",
    ];
    for text in hostile {
        let line = Rule::new(vec![Match::Comment(text.into())], Target::Return).save_line("C");
        assert!(!line.contains('\n') && !line.chars().any(char::is_control), "{line:?}");
        let words = restore_words(&line);
        assert_eq!(words.len(), 8, "{text:?} became {words:?}");
        assert_eq!(words[5], text.replace(|c: char| c.is_control(), " "));
        assert_eq!(words[6..], ["-j", "RETURN"]);
    }
    let long = "é".repeat(200);
    let saved = save_string(&long);
    assert_eq!(
        saved.len(),
        2 + 254,
        "cut to whole characters within {MAX_COMMENT} bytes"
    );
}

/// The word splitting of iptables-restore's `add_param_to_argv`.
fn restore_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut escaped, mut any) = (Vec::new(), String::new(), false, false, false);
    for c in line.chars() {
        if escaped {
            word.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
            any = true;
        } else if c == ' ' && !quoted {
            if any || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            any = false;
        } else {
            word.push(c);
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

#[test]
fn rule_prints_in_iptables_save_order() {
    let rule = Rule::new(
        vec![
            Match::Source {
                net: "10.244.0.0/16".parse().unwrap(),
                negated: true,
            },
            Match::Destination {
                net: host("10.96.120.15".parse().unwrap()),
                negated: false,
            },
            Match::Protocol(Protocol::Tcp),
            Match::Comment("shop/web:http cluster IP".into()),
            Match::DestinationPort {
                protocol: Protocol::Tcp,
                port: Some(80),
            },
        ],
        Target::Jump("KUBE-MARK-MASQ".into()),
    );
    assert_eq!(
        rule.save_line("KUBE-SVC-67NZLRHBNDSAWJRO"),
        "-A KUBE-SVC-67NZLRHBNDSAWJRO ! -s 10.244.0.0/16 -d 10.96.120.15/32 -p tcp -m comment --comment \"shop/web:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"
    );
    let mark = Rule::new(
        vec![Match::Mark {
            value: 0x4000,
            mask: 0x4000,
            negated: true,
        }],
        Target::Return,
    );
    assert_eq!(
        mark.save_line("KUBE-POSTROUTING"),
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
    );
}
