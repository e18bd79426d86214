//! The `meso` command line: `master`, `agent`, `local`, `execute`, `executor`.
//!
//! # Layout
//! - this file: the subcommands' flags, their parsing into [`Command`], usage texts.
//! - [`flags`]: the flag parser.
//! - [`run`]: what each subcommand does.
//! - [`execute`]: the framework behind `meso execute`.

pub mod execute;
pub mod flags;
pub mod run;

use flags::{value, FlagError, Flags, Spec};
use meso::process::Upid;
use meso::resources::{Resources, Scalar};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: meso <command> [flags]

commands:
  master     run a master
  agent      run an agent that offers this machine to a master
  local      run a master and N agents in one process
  execute    run a command as tasks on a cluster and report how they end
  executor   the command executor (started by agents)

'meso <command> --help' lists the flags of a command.";

const MASTER_USAGE: &str = "\
usage: meso master [--ip 127.0.0.1] [--advertise-ip IP] [--port 5050] [--work-dir DIR]
                   [--agent-ping-timeout 15secs] [--max-agent-ping-timeouts 5]
                   [--agent-reregister-timeout 10mins]";

const AGENT_USAGE: &str = "\
usage: meso agent --master HOST:PORT [--ip 127.0.0.1] [--advertise-ip IP] [--port 5051]
                  [--recovery-timeout 15mins]
                  [--work-dir /tmp/meso/agent] [--resources STR] [--attributes STR] [--name agent]

  --resources   e.g. 'cpus:4;mem:4096;disk:10000;ports:[31000-32000]' (default: detected)
  --attributes  e.g. 'rack:r1;zone:a'";

const LOCAL_USAGE: &str = "\
usage: meso local [--agents 3] [--resources STR] [--port 5050] [--work-dir DIR]

  --resources   what each agent offers (default: this machine, split between the agents)";

const EXECUTE_USAGE: &str = "\
usage: meso execute (--master HOST:PORT | --local N) --command CMD [--instances 1]
                    [--cpus 0.1] [--mem 32] [--name task] [--kill-after-ms MS]

Runs CMD (through sh -c) as tasks named <name>-0 .. <name>-<instances-1>, prints one line per
status update and a summary; exits 0 only if every task finished.
  --kill-after-ms   kill each task that long after it is running";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Master(MasterArgs),
    Agent(AgentArgs),
    Local(LocalArgs),
    Execute(ExecuteArgs),
    Executor,
    /// Print this text to stdout and exit 0.
    Help(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MasterArgs {
    pub listen: SocketAddr,
    /// Where peers reach this node, when `listen` is the unspecified address.
    pub advertise_ip: Option<IpAddr>,
    pub work_dir: Option<PathBuf>,
    pub agent_ping_timeout_ms: u64,
    pub max_agent_ping_timeouts: u32,
    pub agent_reregister_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentArgs {
    pub master: Upid,
    pub listen: SocketAddr,
    pub advertise_ip: Option<IpAddr>,
    pub work_dir: PathBuf,
    pub resources: Option<Resources>,
    pub attributes: Vec<(String, String)>,
    pub name: String,
    pub recovery_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocalArgs {
    pub agents: usize,
    pub resources: Option<Resources>,
    pub port: u16,
    pub work_dir: Option<PathBuf>,
}

/// Where `meso execute` finds a cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Master(Upid),
    Local(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteArgs {
    pub target: Target,
    pub command: String,
    pub instances: usize,
    pub cpus: Scalar,
    pub mem: Scalar,
    pub name: String,
    pub kill_after_ms: Option<u64>,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, FlagError> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help(USAGE));
    };
    match command.as_str() {
        "--help" | "-h" | "help" => Ok(Command::Help(USAGE)),
        "master" => parse_master(rest),
        "agent" => parse_agent(rest),
        "local" => parse_local(rest),
        "execute" => parse_execute(rest),
        "executor" => Ok(Command::Executor),
        other => Err(FlagError::UnknownCommand(other.to_string())),
    }
}

fn parse_master(args: &[String]) -> Result<Command, FlagError> {
    let specs: &[Spec] = &[
        value("ip"),
        value("advertise-ip"),
        value("port"),
        value("work-dir"),
        value("agent-ping-timeout"),
        value("max-agent-ping-timeouts"),
        value("agent-reregister-timeout"),
    ];
    let f = Flags::parse("master", args, specs)?;
    if f.help {
        return Ok(Command::Help(MASTER_USAGE));
    }
    let defaults = crate::master::MasterConfig::default();
    let max_timeouts = f.number("max-agent-ping-timeouts", defaults.max_agent_ping_timeouts)?;
    if max_timeouts == 0 {
        return Err(FlagError::BadValue {
            flag: "max-agent-ping-timeouts".to_string(),
            reason: "must be at least 1".to_string(),
        });
    }
    let agent_ping_timeout_ms = f.parsed(
        "agent-ping-timeout",
        defaults.agent_ping_timeout_ms,
        flags::duration_ms,
    )?;
    if agent_ping_timeout_ms == 0 {
        // Every agent would miss its first ping at once and be lost.
        return Err(bad("agent-ping-timeout", "must be more than 0".to_string()));
    }
    Ok(Command::Master(MasterArgs {
        listen: listen(&f, 5050)?,
        advertise_ip: advertise_ip(&f)?,
        work_dir: f.get("work-dir").map(PathBuf::from),
        agent_ping_timeout_ms,
        max_agent_ping_timeouts: max_timeouts,
        agent_reregister_timeout_ms: f.parsed(
            "agent-reregister-timeout",
            defaults.agent_reregister_timeout_ms,
            flags::duration_ms,
        )?,
    }))
}

fn parse_agent(args: &[String]) -> Result<Command, FlagError> {
    let specs: &[Spec] = &[
        value("master"),
        value("ip"),
        value("advertise-ip"),
        value("port"),
        value("work-dir"),
        value("resources"),
        value("attributes"),
        value("name"),
        value("recovery-timeout"),
    ];
    let f = Flags::parse("agent", args, specs)?;
    if f.help {
        return Ok(Command::Help(AGENT_USAGE));
    }
    let master = f.required("master")?;
    Ok(Command::Agent(AgentArgs {
        master: master_upid(master).map_err(|reason| bad("master", reason))?,
        listen: listen(&f, 5051)?,
        advertise_ip: advertise_ip(&f)?,
        work_dir: PathBuf::from(f.get("work-dir").unwrap_or("/tmp/meso/agent")),
        resources: resources(&f)?,
        attributes: f.parsed("attributes", Vec::new(), parse_attributes)?,
        name: f.get("name").unwrap_or("agent").to_string(),
        recovery_timeout_ms: f.parsed(
            "recovery-timeout",
            crate::agent::default_recovery_timeout_ms(),
            flags::duration_ms,
        )?,
    }))
}

fn parse_local(args: &[String]) -> Result<Command, FlagError> {
    let specs: &[Spec] = &[
        value("agents"),
        value("resources"),
        value("port"),
        value("work-dir"),
    ];
    let f = Flags::parse("local", args, specs)?;
    if f.help {
        return Ok(Command::Help(LOCAL_USAGE));
    }
    let agents = f.number::<usize>("agents", 3)?;
    if agents == 0 {
        return Err(bad("agents", "at least one agent is needed".to_string()));
    }
    Ok(Command::Local(LocalArgs {
        agents,
        resources: resources(&f)?,
        port: f.number("port", 5050)?,
        work_dir: f.get("work-dir").map(PathBuf::from),
    }))
}

fn parse_execute(args: &[String]) -> Result<Command, FlagError> {
    let specs: &[Spec] = &[
        value("master"),
        value("local"),
        value("command"),
        value("instances"),
        value("cpus"),
        value("mem"),
        value("name"),
        value("kill-after-ms"),
    ];
    let f = Flags::parse("execute", args, specs)?;
    if f.help {
        return Ok(Command::Help(EXECUTE_USAGE));
    }
    let target = match (f.get("master"), f.has("local")) {
        (Some(_), true) => {
            return Err(FlagError::Conflict(
                "'execute' takes --master or --local, not both".to_string(),
            ))
        }
        (Some(m), false) => Target::Master(master_upid(m).map_err(|r| bad("master", r))?),
        (None, true) => {
            let n = f.number::<usize>("local", 1)?;
            if n == 0 {
                return Err(bad("local", "at least one agent is needed".to_string()));
            }
            Target::Local(n)
        }
        (None, false) => {
            return Err(FlagError::Required {
                flag: "master".to_string(),
                command: "execute".to_string(),
            })
        }
    };
    let command = f.required("command")?.to_string();
    if command.trim().is_empty() {
        return Err(bad("command", "an empty command runs nothing".to_string()));
    }
    let instances = f.number::<usize>("instances", 1)?;
    if instances == 0 {
        return Err(bad("instances", "at least one task is needed".to_string()));
    }
    let name = f.get("name").unwrap_or("task").to_string();
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('/') {
        return Err(bad("name", format!("'{name}' is not a usable task name")));
    }
    Ok(Command::Execute(ExecuteArgs {
        target,
        command,
        instances,
        cpus: f.parsed("cpus", Scalar::from_millis(100), positive_scalar)?,
        mem: f.parsed("mem", Scalar::from_millis(32_000), positive_scalar)?,
        name,
        kill_after_ms: f.parsed("kill-after-ms", None, |t| t.trim().parse::<u64>().map(Some))?,
    }))
}

fn bad(flag: &str, reason: String) -> FlagError {
    FlagError::BadValue {
        flag: flag.to_string(),
        reason,
    }
}

fn listen(f: &Flags, default_port: u16) -> Result<SocketAddr, FlagError> {
    let ip = f.parsed("ip", IpAddr::V4(Ipv4Addr::LOCALHOST), parse_ip)?;
    let port = f.number("port", default_port)?;
    Ok(SocketAddr::new(ip, port))
}

/// `--advertise-ip`, required when `--ip` is the unspecified address (`0.0.0.0`): peers must be
/// told an address they can reach, and this node cannot guess which of its addresses that is.
/// Given with a specific `--ip` too, it is what peers are told (an address behind NAT, say).
fn advertise_ip(f: &Flags) -> Result<Option<IpAddr>, FlagError> {
    let advertise = f.parsed("advertise-ip", None, |t| parse_ip(t).map(Some))?;
    if let Some(ip) = advertise {
        if ip.is_unspecified() {
            return Err(bad(
                "advertise-ip",
                format!("{ip} cannot be reached; give this node's address"),
            ));
        }
    }
    let ip = f.parsed("ip", IpAddr::V4(Ipv4Addr::LOCALHOST), parse_ip)?;
    if ip.is_unspecified() && advertise.is_none() {
        return Err(bad(
            "ip",
            format!("{ip} listens everywhere: add --advertise-ip with the address peers reach"),
        ));
    }
    Ok(advertise)
}

fn resources(f: &Flags) -> Result<Option<Resources>, FlagError> {
    f.parsed("resources", None, |t| Resources::parse(t).map(Some))
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    match text.trim() {
        "localhost" => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        t => t.parse().map_err(|_| format!("'{t}' is not an IP address")),
    }
}

fn positive_scalar(text: &str) -> Result<Scalar, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number"))?;
    match Scalar::from_f64(value) {
        Some(s) if s.is_positive() => Ok(s),
        _ => Err(format!("'{text}' is not a positive amount")),
    }
}

/// `HOST:PORT` (HOST an IP or `localhost`), or a full `master@ip:port`.
pub fn master_upid(text: &str) -> Result<Upid, String> {
    let text = text.trim();
    if text.contains('@') {
        return text.parse::<Upid>().map_err(|e| e.to_string());
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("'{text}' is not HOST:PORT"))?;
    let ip = parse_ip(host.trim_start_matches('[').trim_end_matches(']'))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port"))?;
    Upid::new("master", SocketAddr::new(ip, port)).map_err(|e| e.to_string())
}

/// `rack:r1;zone:a` into pairs.
pub fn parse_attributes(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.split_once(':') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("'{part}' is not name:value")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Command, FlagError> {
        let args: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse(&args)
    }

    #[test]
    fn agent_flags_in_both_spellings() {
        let Command::Agent(a) =
            parse_line("agent --master localhost:5050 --work_dir=/w --port 6000 --resources cpus:2;mem:100 --attributes rack:r1;zone:a")
                .unwrap()
        else {
            panic!("not an agent");
        };
        assert_eq!(a.master.to_string(), "master@127.0.0.1:5050");
        assert_eq!(a.work_dir, PathBuf::from("/w"));
        assert_eq!(a.listen.port(), 6000);
        assert_eq!(
            a.resources,
            Some(Resources::parse("cpus:2;mem:100").unwrap())
        );
        assert_eq!(
            a.attributes,
            vec![("rack".into(), "r1".into()), ("zone".into(), "a".into())]
        );
        assert_eq!(a.name, "agent");
    }

    /// Listening on every address needs the address peers should use; a given one is kept.
    #[test]
    fn an_unspecified_ip_needs_an_advertised_one() {
        let e = parse_line("master --ip 0.0.0.0").unwrap_err();
        assert!(e.to_string().starts_with("bad --ip: "), "{e}");
        let e = parse_line("master --ip 0.0.0.0 --advertise-ip 0.0.0.0").unwrap_err();
        assert!(e.to_string().starts_with("bad --advertise-ip: "), "{e}");
        let Command::Master(m) = parse_line("master --ip 0.0.0.0 --advertise_ip 10.1.2.3").unwrap()
        else {
            panic!("not a master");
        };
        assert_eq!(m.advertise_ip, Some("10.1.2.3".parse().unwrap()));
        let Command::Agent(a) = parse_line("agent --master 127.0.0.1:5050").unwrap() else {
            panic!("not an agent");
        };
        assert_eq!(a.advertise_ip, None);
    }

    #[test]
    fn errors_name_the_flag() {
        let e = parse_line("agent --master 127.0.0.1:5050 --wrok-dir /w").unwrap_err();
        assert_eq!(e.to_string(), "unknown flag --wrok-dir for 'agent'");
        let e = parse_line("agent --master 127.0.0.1:5050 --resources cpus:lots").unwrap_err();
        assert!(e.to_string().starts_with("bad --resources: "), "{e}");
        let e = parse_line("agent --master somehost:5050").unwrap_err();
        assert!(e.to_string().starts_with("bad --master: "), "{e}");
        let e = parse_line("agent").unwrap_err();
        assert_eq!(e.to_string(), "'agent' needs --master");
        let e = parse_line("execute --local 2 --command x --cpus -1").unwrap_err();
        assert!(e.to_string().starts_with("bad --cpus: "), "{e}");
        assert!(parse_line("frobnicate").is_err());
    }

    /// Values that parse but cannot work are flag errors too, each naming its flag.
    #[test]
    fn values_that_cannot_work_name_their_flag() {
        let args: Vec<String> = ["execute", "--local", "1", "--command", " "]
            .map(String::from)
            .to_vec();
        let e = parse(&args).unwrap_err();
        assert!(e.to_string().starts_with("bad --command: "), "{e}");
        let e = parse_line("master --agent-ping-timeout 0secs").unwrap_err();
        assert!(
            e.to_string().starts_with("bad --agent-ping-timeout: "),
            "{e}"
        );
        let e = parse_line("master --max-agent-ping-timeouts 0").unwrap_err();
        assert!(
            e.to_string().starts_with("bad --max-agent-ping-timeouts: "),
            "{e}"
        );
        let Command::Master(m) =
            parse_line("master --ip 127.0.0.1 --advertise-ip 10.1.2.3").unwrap()
        else {
            panic!("not a master");
        };
        assert_eq!(m.advertise_ip, Some("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn execute_defaults_and_target() {
        let Command::Execute(e) = parse_line("execute --local 2 --command true").unwrap() else {
            panic!("not execute");
        };
        assert_eq!(e.target, Target::Local(2));
        assert_eq!((e.instances, e.name.as_str()), (1, "task"));
        assert_eq!(
            (e.cpus, e.mem),
            (Scalar::from_millis(100), Scalar::from_millis(32_000))
        );
        assert_eq!(e.kill_after_ms, None);
        assert!(parse_line("execute --command true").is_err());
        let e = parse_line("execute --local 1 --instances 0 --command true").unwrap_err();
        assert!(e.to_string().starts_with("bad --instances: "), "{e}");
        assert!(parse_line("execute --local 1 --master 127.0.0.1:1 --command true").is_err());
        assert_eq!(
            parse_line("execute --help").unwrap(),
            Command::Help(EXECUTE_USAGE)
        );
    }
}
