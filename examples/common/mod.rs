//! The start every example shares: logs on stderr (filtered by `RUST_LOG`), so stdout stays
//! the example's output, then the command line.

/// Installs the example's tracing subscriber and parses its arguments.
pub(crate) fn init<A: clap::Parser>() -> A {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    A::parse()
}
