//! Links the system's libjpeg-turbo (TurboJPEG API) that `src/jpeg.rs` calls, and FFmpeg's
//! libavutil, whose log level `src/convert.rs` sets (libheif's FFmpeg decoder links it too).
//! pkg-config finds them (Debian/Ubuntu: libturbojpeg0-dev, libavcodec-dev; macOS:
//! `brew install jpeg-turbo ffmpeg`); without pkg-config's answer, a plain `-l` is tried so a
//! library in the default search path still links.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if pkg_config::Config::new().probe("libavutil").is_err() {
        println!("cargo:warning=pkg-config does not know libavutil; linking -lavutil (install libavcodec-dev or ffmpeg if this fails)");
        println!("cargo:rustc-link-lib=avutil");
    }
    if pkg_config::Config::new().atleast_version("2.0").probe("libturbojpeg").is_err() {
        println!("cargo:warning=pkg-config does not know libturbojpeg; linking -lturbojpeg (install libturbojpeg0-dev or jpeg-turbo if this fails)");
        println!("cargo:rustc-link-lib=turbojpeg");
    }
}
