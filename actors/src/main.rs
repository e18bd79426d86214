//! The `meso` binary: see `meso --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match meso_actors::cli::parse(&args) {
        Ok(command) => meso_actors::cli::run::run(command),
        Err(e) => {
            eprintln!("meso: {e}");
            2
        }
    };
    std::process::exit(code);
}
