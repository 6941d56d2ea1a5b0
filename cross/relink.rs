//! Build script: relinks the gateway when a code layout script in
//! cross/layout/ changes (cross/layout.sh). lld reads those files, but
//! cargo does not know of them.
fn main() {
    println!("cargo:rerun-if-changed=cross/layout");
}
