//! A small flag parser: `--flag value` and `--flag=value`, dashes or the Mesos underscore spelling
//! (`--work_dir` is `--work-dir`), `--help` per subcommand.

use std::collections::HashMap;

/// Why a command line was refused. The binary prints it after `meso: ` and exits with code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("unknown flag --{flag} for '{command}'")]
    Unknown { flag: String, command: String },
    #[error("missing value for --{flag}")]
    MissingValue { flag: String },
    #[error("--{flag} takes no value")]
    UnexpectedValue { flag: String },
    #[error("bad --{flag}: {reason}")]
    BadValue { flag: String, reason: String },
    #[error("'{command}' needs --{flag}")]
    Required { flag: String, command: String },
    #[error("unexpected argument '{arg}' for '{command}'")]
    Positional { arg: String, command: String },
    #[error("unknown command '{0}' (try 'meso --help')")]
    UnknownCommand(String),
    #[error("{0}")]
    Conflict(String),
}

/// One flag a subcommand takes: its dashed name and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub name: &'static str,
    pub takes_value: bool,
}

pub const fn value(name: &'static str) -> Spec {
    Spec {
        name,
        takes_value: true,
    }
}

/// The parsed flags of one subcommand, by dashed name.
#[derive(Debug, Default)]
pub struct Flags {
    command: String,
    values: HashMap<&'static str, String>,
    /// Set when `--help` or `-h` was given.
    pub help: bool,
}

impl Flags {
    /// Parses `args` (after the subcommand) against `specs`. The last of repeated flags wins.
    pub fn parse(command: &str, args: &[String], specs: &[Spec]) -> Result<Flags, FlagError> {
        let mut flags = Flags {
            command: command.to_string(),
            ..Flags::default()
        };
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if arg == "--help" || arg == "-h" {
                flags.help = true;
                continue;
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(FlagError::Positional {
                    arg: arg.clone(),
                    command: command.to_string(),
                });
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let name = name.replace('_', "-");
            let Some(spec) = specs.iter().find(|s| s.name == name) else {
                return Err(FlagError::Unknown {
                    flag: name,
                    command: command.to_string(),
                });
            };
            let value = if spec.takes_value {
                match inline {
                    Some(v) => v,
                    None if i < args.len() => {
                        i += 1;
                        args[i - 1].clone()
                    }
                    None => return Err(FlagError::MissingValue { flag: name }),
                }
            } else {
                if inline.is_some() {
                    return Err(FlagError::UnexpectedValue { flag: name });
                }
                String::new()
            };
            flags.values.insert(spec.name, value);
        }
        Ok(flags)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn required(&self, name: &str) -> Result<&str, FlagError> {
        self.get(name).ok_or_else(|| FlagError::Required {
            flag: name.to_string(),
            command: self.command.clone(),
        })
    }

    /// The flag parsed with `parse`, or `default` when absent; a parse error names the flag.
    pub fn parsed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, FlagError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => parse(text).map_err(|e| FlagError::BadValue {
                flag: name.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// The flag parsed by `FromStr`, or `default`.
    pub fn number<T>(&self, name: &str, default: T) -> Result<T, FlagError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.parsed(name, default, |t| t.trim().parse::<T>())
    }
}

/// A duration as Mesos writes them, in milliseconds: a number and a unit (`ns`, `us`, `ms`,
/// `secs`/`s`, `mins`/`m`, `hrs`/`h`, `days`/`d`, `weeks`/`w`), e.g. `15secs`, `500ms`, `1.5s`.
pub fn duration_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("'{text}' has no unit (e.g. 15secs, 500ms)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a number"))?;
    let per_unit_ms = match unit.trim() {
        "ns" => 1e-6,
        "us" => 1e-3,
        "ms" => 1.0,
        "s" | "sec" | "secs" => 1e3,
        "m" | "min" | "mins" => 60e3,
        "h" | "hr" | "hrs" => 3600e3,
        "d" | "day" | "days" => 86_400e3,
        "w" | "week" | "weeks" => 604_800e3,
        other => return Err(format!("unknown unit '{other}' in '{text}'")),
    };
    let ms = value * per_unit_ms;
    if !ms.is_finite() || ms < 0.0 || ms > u64::MAX as f64 {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(ms.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_mesos_style() {
        assert_eq!(duration_ms("15secs"), Ok(15_000));
        assert_eq!(duration_ms("15s"), Ok(15_000));
        assert_eq!(duration_ms("500ms"), Ok(500));
        assert_eq!(duration_ms("1.5s"), Ok(1_500));
        assert_eq!(duration_ms("10mins"), Ok(600_000));
        assert_eq!(duration_ms("2hrs"), Ok(7_200_000));
        assert!(duration_ms("15").is_err());
        assert!(duration_ms("secs").is_err());
        assert!(duration_ms("5parsecs").is_err());
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const SPECS: &[Spec] = &[value("work-dir"), value("port")];

    #[test]
    fn dashes_underscores_and_equals_are_one_flag() {
        for line in [
            &["--work-dir", "/a"][..],
            &["--work_dir", "/a"],
            &["--work-dir=/a"],
            &["--work_dir=/a"],
        ] {
            let f = Flags::parse("agent", &args(line), SPECS).unwrap();
            assert_eq!(f.get("work-dir"), Some("/a"), "{line:?}");
        }
    }

    #[test]
    fn values_may_contain_equals_and_start_with_dashes() {
        let f = Flags::parse("agent", &args(&["--work-dir", "--x=y"]), SPECS).unwrap();
        assert_eq!(f.get("work-dir"), Some("--x=y"));
        let f = Flags::parse("agent", &args(&["--work-dir=a=b"]), SPECS).unwrap();
        assert_eq!(f.get("work-dir"), Some("a=b"));
    }

    #[test]
    fn an_unknown_flag_is_named_with_its_command() {
        let e = Flags::parse("agent", &args(&["--wrok-dir", "/a"]), SPECS).unwrap_err();
        assert_eq!(e.to_string(), "unknown flag --wrok-dir for 'agent'");
    }

    #[test]
    fn a_missing_value_and_a_bad_number_are_named() {
        let e = Flags::parse("agent", &args(&["--port"]), SPECS).unwrap_err();
        assert_eq!(e.to_string(), "missing value for --port");
        let f = Flags::parse("agent", &args(&["--port", "http"]), SPECS).unwrap();
        let e = f.number::<u16>("port", 5051).unwrap_err();
        assert!(e.to_string().starts_with("bad --port: "), "{e}");
        let f = Flags::parse("agent", &args(&[]), SPECS).unwrap();
        assert_eq!(f.number::<u16>("port", 5051), Ok(5051));
    }

    #[test]
    fn help_and_positionals() {
        assert!(
            Flags::parse("agent", &args(&["--help"]), SPECS)
                .unwrap()
                .help
        );
        assert!(Flags::parse("agent", &args(&["-h"]), SPECS).unwrap().help);
        let e = Flags::parse("agent", &args(&["stray"]), SPECS).unwrap_err();
        assert_eq!(e.to_string(), "unexpected argument 'stray' for 'agent'");
    }
}
