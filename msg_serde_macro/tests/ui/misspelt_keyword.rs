use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    pub strcut Misspelt("x::Misspelt") {
        pub a: u32,
    }
}

fn main() {}
