//! The adder: a service, an actor that serves it, a typed `ask`; in one
//! process, then across two.
//!
//! ```text
//! cargo run --example adder                         # both: it starts the server process itself
//! cargo run --example adder -- serve unix:/tmp/calc.sock   # terminal 1
//! cargo run --example adder -- ask unix:/tmp/calc.sock     # terminal 2
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipchnl::{Addr, Context, Handler, Manager, ManagerConfig, msg_serde_macro, service};

// --- The adder, as the README shows it. ---

msg_serde_macro! { struct Add("adder::Add") -> Sum { a: i64, b: i64 } }
msg_serde_macro! { struct Sum("adder::Sum") { sum: i64 } }
service! { Calc = "calc" [Add] }

struct Adder;

impl Handler<Add> for Adder {
    fn handle(&mut self, _: &mut Context<'_>, add: Add) -> Sum {
        Sum::new(add.a + add.b)
    }
}

fn in_one_process() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default())?;
    let calc = manager.serve::<Calc, _>("adder", Adder)?;
    let sum = calc.ask(Add::new(2, 3), Duration::from_secs(5))?;
    println!("here: 2 + 3 = {}", sum.sum);
    Ok(())
}

// --- The same adder, across two processes. ---

/// Serves the adder at `addr` until stdin closes.
fn serve(addr: &Addr) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default().node_name("calc-server"))?;
    manager.serve::<Calc, _>("adder", Adder)?;
    println!("listening on {}", manager.listen(addr)?);
    std::io::stdout().flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// Links to the server at `addr` and asks its adder, typed.
fn ask(addr: &Addr) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default().node_name("calc-client"))?;
    manager.connect(addr)?;
    let calc = manager.find::<Calc>("adder@calc-server").ok_or("no adder there")?;
    let sum = calc.ask(Add::new(40, 2), Duration::from_secs(5))?;
    println!("there: 40 + 2 = {}", sum.sum);
    // Only servers of Calc are found by it: this client is none.
    println!("servers of Calc: {}", manager.find_all::<Calc>().len());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [role, addr] if role == "serve" => serve(&addr.parse()?),
        [role, addr] if role == "ask" => ask(&addr.parse()?),
        [] => {
            in_one_process()?;
            let path = std::env::temp_dir().join(format!("adder-{}.sock", std::process::id()));
            let mut child = Command::new(std::env::current_exe()?)
                .args(["serve", &format!("unix:{}", path.display())])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut line = String::new();
            BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
            let addr =
                line.trim().strip_prefix("listening on ").ok_or("the server did not start")?.parse()?;
            let outcome = ask(&addr);
            drop(child.stdin.take()); // the server stops when its stdin closes
            child.wait()?;
            outcome
        }
        _ => Err("usage: adder [serve ADDR | ask ADDR]".into()),
    }
}
