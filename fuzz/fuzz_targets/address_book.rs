//! The address book loader (`<datadir>/peers.json`) on arbitrary file contents. Local disk,
//! but the promise is "never lose stored data": a file that loads saves back to a file that
//! loads to the same book, and a file that does not load is moved aside byte for byte.
#![no_main]

use std::path::PathBuf;

use ethp2p::pool::{AddressBook, BOOK_FILE};
use libfuzzer_sys::fuzz_target;

/// One scratch directory per fuzzing process (libFuzzer may run several with `-jobs`).
fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ethp2p-fuzz-book-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let path = dir.join(BOOK_FILE);
    std::fs::write(&path, data).expect("write the book");
    let (book, aside) = AddressBook::load(&path).expect("a local file always loads");
    match aside {
        Some(aside) => {
            assert!(book.entries.is_empty());
            assert_eq!(std::fs::read(&aside).expect("moved aside"), data, "the evidence is kept intact");
            assert!(!path.exists());
            std::fs::remove_file(aside).expect("clean up");
        }
        None => {
            book.save(&path).expect("save");
            let (again, aside) = AddressBook::load(&path).expect("reload");
            assert!(aside.is_none(), "a saved book loads");
            assert_eq!(again, book, "nothing lost in a save/load cycle");
            std::fs::remove_file(&path).expect("clean up");
        }
    }
});
