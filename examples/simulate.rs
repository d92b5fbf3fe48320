//! Runs the overlay simulator from the command line:
//! `cargo run --release --example simulate -- --topology pub_sub --nodes 10000 --rounds 30 --seed 7`.

use clap::Parser;
use topod::sim::{run_simulate, SimulateArgs};

#[derive(Parser)]
#[command(about = "Simulate overlay topologies (discrete-event, seeded)")]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    run_simulate(&cli.args, &mut stdout.lock())?;
    Ok(())
}
