use msg_local_macro::msg_local_macro;

const NAME: &str = "x::NotLiteral";

msg_local_macro! {
    pub struct NotLiteral(NAME) {
        pub a: u32,
    }
}

fn main() {}
