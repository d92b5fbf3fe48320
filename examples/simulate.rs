//! Runs the overlay simulator from the command line:
//! `cargo run --release --example simulate -- --topology pub_sub --nodes 10000 --rounds 30 --seed 7`.

use clap::Parser;
use topod::sim::{run_simulate, SimulateArgs};

#[derive(Parser)]
#[command(about = "Simulate overlay topologies (discrete-event, seeded)")]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    cli.args.json = cli.json;
    let stdout = std::io::stdout();
    run_simulate(&cli.args, &mut stdout.lock())?;
    Ok(())
}
