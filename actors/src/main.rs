fn main() {
    if std::env::args().nth(1).as_deref() == Some("executor") {
        std::process::exit(meso_actors::executor::run_command_executor());
    }
}
