use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    pub struct NoName {
        pub a: u32,
    }
}

fn main() {}
