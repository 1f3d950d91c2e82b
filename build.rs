fn main() {
    // sqlx embeds migrations at compile time: a new migration must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
