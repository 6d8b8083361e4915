use msg_serde_macro::msg_serde_macro;

const NAME: &str = "x::NotLiteral";

msg_serde_macro! {
    pub struct NotLiteral(NAME) {
        pub a: u32,
    }
}

fn main() {}
