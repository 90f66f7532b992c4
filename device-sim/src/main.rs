//! Simulated devices for Switchboard, with an embedded broker. A placeholder until the simulator lands.

fn main() {
    println!("usage: device-sim (the simulator arrives with its issue; nothing to run yet)");
}
