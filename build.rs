//! Links the system's libjpeg-turbo (TurboJPEG API) that `src/jpeg.rs` calls. pkg-config finds it
//! (Debian/Ubuntu: libturbojpeg0-dev; macOS: `brew install jpeg-turbo`); without pkg-config's
//! answer, a plain `-lturbojpeg` is tried so a library in the default search path still links.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if pkg_config::Config::new().atleast_version("2.0").probe("libturbojpeg").is_err() {
        println!("cargo:warning=pkg-config does not know libturbojpeg; linking -lturbojpeg (install libturbojpeg0-dev or jpeg-turbo if this fails)");
        println!("cargo:rustc-link-lib=turbojpeg");
    }
}
