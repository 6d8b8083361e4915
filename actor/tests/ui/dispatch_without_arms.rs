use actor::{Context, dispatch};
use msg_header::BoxMsg;

fn handle(ctx: &mut Context<'_>, msg: BoxMsg) {
    dispatch!(msg, ctx)
}

fn main() {}
