//! The start every example shares: logs on stderr (filtered by `RUST_LOG`), so stdout stays
//! the example's output, then the command line.

/// Installs the example's tracing subscriber and parses its arguments.
pub(crate) fn init<A: clap::Parser>() -> A {
    // `discv5` stays at error unless RUST_LOG names it: some of its warnings can be
    // triggered at will by unauthenticated packets.
    let directives = ethp2p::discovery::log_filter(std::env::var("RUST_LOG").ok().as_deref(), "error");
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(directives).unwrap_or_default())
        .with_writer(std::io::stderr)
        .init();
    A::parse()
}
