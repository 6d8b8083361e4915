//! A request with a typed reply, across two processes: `GetTemp` declares
//! that it is answered with a `Temp`, so `ask` returns a `Temp` and the
//! station can answer with nothing else.
//!
//! ```text
//! cargo run --example weather                          # both processes: it starts the station itself
//! cargo run --example weather -- station unix:/tmp/w.sock   # terminal 1
//! cargo run --example weather -- ask unix:/tmp/w.sock       # terminal 2
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipchnl::{
    Actor, Addr, BoxMsg, Context, Manager, ManagerConfig, ProtocolSet, dispatch, msg_serde_macro, protocol,
    protocol_set,
};

msg_serde_macro! {
    /// Asks for the temperature of a city; answered with a `Temp`.
    struct GetTemp("weather::GetTemp") -> Temp {
        city: String,
    }
}

msg_serde_macro! {
    /// A temperature, in tenths of a degree Celsius.
    struct Temp("weather::Temp") {
        city: String,
        tenths: i32,
    }
}

protocol! {
    /// What a station is asked, and what it answers with: a station takes
    /// `GetTemp`, its askers take `Temp`.
    fn weather = "weather" [GetTemp -> Temp]
}

protocol_set! {
    /// What a station speaks.
    fn station_set = "weather::Station" [weather()]
}

/// Knows the temperature of a few cities; holds only that (its manager
/// gives it its name and id).
struct Station;

impl Actor for Station {
    fn protocol_set(&self) -> &'static ProtocolSet {
        station_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        dispatch!(msg, ctx, {
            get: GetTemp => {
                let tenths = match get.city.as_str() {
                    "Oslo" => -35,
                    "Lisbon" => 184,
                    _ => 120,
                };
                // Only a `Temp` compiles here: `GetTemp` names it.
                ctx.answer_to(&get, Temp::new(get.city.clone(), tenths));
            },
        })
    }
}

/// Hosts the station at `addr` until stdin closes.
fn station(addr: &Addr) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default().node_name("weather-station"))?;
    manager.add("station", Station)?;
    println!("listening on {}", manager.listen(addr)?);
    std::io::stdout().flush()?;
    std::io::stdin().read_to_end(&mut Vec::new())?;
    Ok(())
}

/// Links to the station at `addr` and asks it, typed.
fn ask(addr: &Addr) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default().node_name("weather-asker"))?;
    manager.connect(addr)?;
    // Only servers of the protocol are found by it (an asker is none).
    let station = manager.find_by_protocol(weather().id()).into_iter().next().ok_or("no station found")?;
    for city in ["Oslo", "Lisbon", "Lima"] {
        // `ask` returns a `Temp`: no downcast.
        let temp: Temp = station.ask(GetTemp::new(city.into()), Duration::from_secs(5))?;
        println!("{}: {:.1} °C", temp.city, f64::from(temp.tenths) / 10.0);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [role, addr] if role == "station" => station(&addr.parse()?),
        [role, addr] if role == "ask" => ask(&addr.parse()?),
        [] => {
            // Both: this program again as the station, then the asker here.
            let path = std::env::temp_dir().join(format!("weather-{}.sock", std::process::id()));
            let mut child = Command::new(std::env::current_exe()?)
                .args(["station", &format!("unix:{}", path.display())])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut line = String::new();
            BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
            let addr =
                line.trim().strip_prefix("listening on ").ok_or("the station did not start")?.parse()?;
            println!("station process {}: {}", child.id(), line.trim());
            let outcome = ask(&addr);
            drop(child.stdin.take()); // the station stops when its stdin closes
            child.wait()?;
            outcome
        }
        _ => Err("usage: weather [station ADDR | ask ADDR]".into()),
    }
}
