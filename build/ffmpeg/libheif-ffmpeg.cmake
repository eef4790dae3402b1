# Read by CMake while it configures the libheif that libheif-sys builds into photoferry
# (.cargo/config.toml points CMAKE_TOOLCHAIN_FILE here). libheif-sys switches libheif's FFmpeg
# HEVC decoder off because it would not link; photoferry turns it back on, built in, because it
# decodes iPhone HEICs much faster than libde265 (BENCHMARKS.md). libde265 stays built in too.
set(WITH_FFMPEG_DECODER ON CACHE BOOL "FFmpeg HEVC decoder" FORCE)
set(WITH_FFMPEG_DECODER_PLUGIN OFF CACHE BOOL "built in, not a plugin" FORCE)
# libheif 1.23 tests this (never set) name, instead of FFMPEG_avcodec_FOUND, before it lists
# "ffmpeg" in libheif.pc's Requires.private; without that entry the link misses libavcodec.
set(FFMPEG_DECODER_FOUND ON CACHE BOOL "" FORCE)
