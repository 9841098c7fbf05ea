fn main() {
    zkelect::logging::init();
}
