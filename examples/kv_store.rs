//! A key-value store across two processes, with messages, a protocol and an
//! actor of its own.
//!
//! ```text
//! cargo run --example kv_store                       # both processes: it starts the store itself
//! cargo run --example kv_store -- store unix:/tmp/kv.sock    # terminal 1
//! cargo run --example kv_store -- client unix:/tmp/kv.sock   # terminal 2
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ipchnl::{
    Actor, Addr, BoxMsg, Context, Manager, ManagerConfig, ProtocolSet, dispatch, msg_serde_macro, protocol,
    protocol_set,
};

msg_serde_macro! {
    /// Stores `value` under `key`; answered with the value it replaced.
    struct Put("kv_store::Put") -> Value {
        key: String,
        value: String,
    }
}

msg_serde_macro! {
    /// Asks for the value under `key`.
    struct Get("kv_store::Get") -> Value {
        key: String,
    }
}

msg_serde_macro! {
    /// The answer to `Put` (the old value) and `Get` (the value).
    struct Value("kv_store::Value") {
        key: String,
        value: Option<String>,
    }
}

protocol! {
    /// The protocol: what a store is asked, and what it answers.
    fn kv_protocol = "kv_protocol" [Put -> Value, Get -> Value]
}

protocol_set! {
    /// What the store speaks.
    fn store_set = "kv_store::Store" [kv_protocol()]
}

/// The store actor: a map, changed one message at a time.
#[derive(Default)]
struct Store {
    map: HashMap<String, String>,
}

impl Actor for Store {
    fn protocol_set(&self) -> &'static ProtocolSet {
        store_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        dispatch!(msg, ctx, {
            put: Put => {
                let old = self.map.insert(put.key.clone(), put.value.clone());
                ctx.answer_to(&put, Value::new(put.key.clone(), old));
            },
            get: Get => ctx.answer_to(&get, Value::new(get.key.clone(), self.map.get(&get.key).cloned())),
        })
    }
}

/// Hosts the store at `addr` until stdin closes (or Ctrl-C).
fn store(addr: &Addr) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default().node_name("kv-store"))?;
    manager.add("store", Store::default())?;
    let bound = manager.listen(addr)?;
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// Links to the store at `addr`, finds it by protocol, and uses it.
fn client(addr: &Addr) -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::new(ManagerConfig::default().node_name("kv-client"))?;
    manager.connect(addr)?;
    let store = manager.find_by_protocol(kv_protocol().id()).into_iter().next().ok_or("no store found")?;
    println!("found {store:?}");
    let timeout = Duration::from_secs(5);
    for (key, value) in [("colour", "blue"), ("shape", "round"), ("colour", "green")] {
        let old = store.ask(Put::new(key.into(), value.into()), timeout)?;
        println!("put {key} = {value} (was {:?})", old.value);
    }
    for key in ["colour", "shape", "size"] {
        let got = store.ask(Get::new(key.into()), timeout)?;
        println!("get {key} -> {:?}", got.value);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [role, addr] if role == "store" => store(&addr.parse()?),
        [role, addr] if role == "client" => client(&addr.parse()?),
        [] => {
            // Both: this program again as the store, then the client here.
            let path = std::env::temp_dir().join(format!("kv-store-{}.sock", std::process::id()));
            let mut child = Command::new(std::env::current_exe()?)
                .args(["store", &format!("unix:{}", path.display())])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let mut line = String::new();
            BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
            let addr = line.trim().strip_prefix("listening on ").ok_or("the store did not start")?.parse()?;
            println!("store process {} {}", child.id(), line.trim());
            let outcome = client(&addr);
            drop(child.stdin.take()); // the store stops when its stdin closes
            child.wait()?;
            outcome
        }
        _ => Err("usage: kv_store [store ADDR | client ADDR]".into()),
    }
}
