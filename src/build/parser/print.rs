//! The JSON line of an instruction, for `layercake build --print` and for tests: keys in a
//! fixed order, strings escaped by serde_json.

use super::instruction::{Args, Form, Instruction};

/// `{"instruction":…,"flags":[…],"args":[…]}`, then `"json":true` for the exec form and
/// `"heredocs":[…]` when there are any.
pub(super) fn instruction(instruction: &Instruction) -> String {
    let mut out = String::from("{\"instruction\":");
    out.push_str(&string(instruction.keyword().as_str()));
    out.push_str(",\"flags\":");
    let flags: Vec<String> = instruction.flags().iter().map(|f| f.to_string()).collect();
    list(&mut out, flags.iter().map(|f| string(f)));
    out.push_str(",\"args\":");
    match instruction.args() {
        Args::Trigger(trigger) => list(&mut out, std::iter::once(self::instruction(trigger))),
        args => list(&mut out, args.to_strings().iter().map(|a| string(a))),
    }
    if instruction.form() == Form::Exec {
        out.push_str(",\"json\":true");
    }
    if !instruction.heredocs().is_empty() {
        out.push_str(",\"heredocs\":");
        list(
            &mut out,
            instruction.heredocs().iter().map(|h| {
                format!(
                    "{{\"name\":{},\"content\":{},\"expand\":{}}}",
                    string(h.name()),
                    string(h.content()),
                    h.expands()
                )
            }),
        );
    }
    out.push('}');
    out
}

fn list(out: &mut String, items: impl Iterator<Item = String>) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
}

fn string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}
