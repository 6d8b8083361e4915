protocol::protocol! {
    pub fn echo [EchoReq]
}

fn main() {}
