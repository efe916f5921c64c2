// Finds libpoolproxy with pkg-config: an installed libpoolproxy-dev, or a build tree through
// PKG_CONFIG_PATH=<build>/pkgconfig.
fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    match pkg_config::Config::new()
        .range_version("0.1.0".."1.0.0")
        .probe("poolproxy")
    {
        Ok(lib) => {
            for dir in &lib.include_paths {
                println!("cargo:include={}", dir.display());
            }
        }
        Err(e) => panic!(
            "\n\nlibpoolproxy (>= 0.1, < 1.0) was not found by pkg-config.\n\
             Install the libpoolproxy-dev package, or build the library and point pkg-config at \
             the build tree:\n    PKG_CONFIG_PATH=/path/to/build/pkgconfig cargo build\n\n\
             pkg-config said: {e}\n"
        ),
    }
}
