use msg_local_macro::msg_local_macro;

msg_local_macro! {
    pub sturct Misspelt("x::Misspelt") {}
}

fn main() {}
