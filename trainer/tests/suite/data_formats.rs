//! Dataset readers against small files written here in each exact format, plus the real
//! MNIST / Fashion-MNIST when `make setup` has installed them.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use image::{Rgb, RgbImage};
use pagan_trainer::data::{self, CELEBA_CROP, DataError, DatasetSpec, ImageSet, LoadOptions, Split, load};

use crate::common::{python, repo};

fn repo_root() -> PathBuf {
    repo().to_path_buf()
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------- IDX

fn idx_images(n: usize) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..n * 784).map(|i| ((i * 7 + i / 784) % 256) as u8).collect();
    let mut f = 0x0803u32.to_be_bytes().to_vec();
    for d in [n as u32, 28, 28] {
        f.extend_from_slice(&d.to_be_bytes());
    }
    f.extend_from_slice(&pixels);
    (f, pixels)
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut f = 0x0801u32.to_be_bytes().to_vec();
    f.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    f.extend_from_slice(labels);
    f
}

#[test]
fn idx_gz_and_raw_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    let (img, pixels) = idx_images(3);
    // Train split gzipped, test split raw.
    write(&dir.join("train-images-idx3-ubyte.gz"), &gz(&img));
    write(
        &dir.join("train-labels-idx1-ubyte.gz"),
        &gz(&idx_labels(&[3, 1, 4])),
    );
    write(&dir.join("t10k-images-idx3-ubyte"), &img);
    write(&dir.join("t10k-labels-idx1-ubyte"), &idx_labels(&[9, 0, 5]));

    let train = load(&DatasetSpec::Mnist, Split::Train, tmp.path(), None).unwrap();
    assert_eq!(train.shape(), [3, 1, 28, 28]);
    assert_eq!(train.data, pixels);
    assert_eq!(train.labels.as_deref(), Some(&[3u8, 1, 4][..]));
    assert_eq!(train.image(2), &pixels[2 * 784..]);

    let test = load(&DatasetSpec::Mnist, Split::Test, tmp.path(), Some(2)).unwrap();
    assert_eq!(test.shape(), [2, 1, 28, 28]);
    assert_eq!(test.data, &pixels[..2 * 784]);
    assert_eq!(test.labels.as_deref(), Some(&[9u8, 0][..]));
    assert!(test.source.contains("mnist"));
}

fn expect_corrupt(r: Result<ImageSet, DataError>, file: &Path, words: &str) {
    match r {
        Err(e @ DataError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&file.display().to_string()), "{msg}");
            assert!(msg.contains(words), "{msg}");
        }
        other => panic!("expected Corrupt for {}, got {other:?}", file.display()),
    }
}

#[test]
fn idx_damage_is_corrupt_naming_the_file() {
    let (img, _) = idx_images(3);
    let labels = idx_labels(&[1, 2, 3]);
    let setup = |images: &[u8], labels: &[u8], gzip: bool| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnist");
        let (i, l) = if gzip {
            (
                dir.join("train-images-idx3-ubyte.gz"),
                dir.join("train-labels-idx1-ubyte.gz"),
            )
        } else {
            (
                dir.join("train-images-idx3-ubyte"),
                dir.join("train-labels-idx1-ubyte"),
            )
        };
        write(&i, images);
        write(&l, labels);
        (tmp, i, l)
    };
    let run = |tmp: &tempfile::TempDir| load(&DatasetSpec::Mnist, Split::Train, tmp.path(), None);

    // Truncated raw file.
    let (t, i, _) = setup(&img[..img.len() - 10], &labels, false);
    expect_corrupt(run(&t), &i, "truncated");
    // Truncated gzip stream.
    let z = gz(&img);
    let (t, i, _) = setup(&z[..z.len() / 2], &gz(&labels), true);
    expect_corrupt(run(&t), &i, "truncated");
    // Gzip of a truncated file.
    let (t, i, _) = setup(&gz(&img[..img.len() - 1]), &gz(&labels), true);
    expect_corrupt(run(&t), &i, "truncated");
    // Trailing bytes.
    let mut long = img.clone();
    long.push(0);
    let (t, i, _) = setup(&long, &labels, false);
    expect_corrupt(run(&t), &i, "trailing");
    // Wrong magic (labels file given as images).
    let (t, i, _) = setup(&labels, &labels, false);
    expect_corrupt(run(&t), &i, "magic");
    // Label count differs from image count.
    let (t, _, l) = setup(&img, &idx_labels(&[1, 2]), false);
    expect_corrupt(run(&t), &l, "2 labels for 3 images");
    // Wrong image size.
    let mut small = img.clone();
    small[8..12].copy_from_slice(&14u32.to_be_bytes());
    let (t, i, _) = setup(&small, &labels, false);
    expect_corrupt(run(&t), &i, "");
    // Empty file.
    let (t, i, _) = setup(&[], &labels, false);
    expect_corrupt(run(&t), &i, "truncated");
}

#[test]
fn missing_files_name_paths_and_how_to_get_them() {
    let tmp = tempfile::tempdir().unwrap();
    let e = load(&DatasetSpec::Mnist, Split::Train, tmp.path(), None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::Missing { .. }), "{e:?}");
    assert!(msg.contains("make setup"), "{msg}");
    assert!(
        msg.contains(
            &tmp.path()
                .join("mnist/train-images-idx3-ubyte")
                .display()
                .to_string()
        ),
        "{msg}"
    );

    for spec in [DatasetSpec::Cifar10, DatasetSpec::CelebA] {
        let e = load(&spec, Split::Test, tmp.path(), None).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, DataError::Missing { .. }), "{e:?}");
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
        let how = if spec == DatasetSpec::Cifar10 {
            "pagan-train data fetch cifar10"
        } else {
            "mmlab.ie.cuhk.edu.hk"
        };
        assert!(msg.contains(how), "{msg}");
    }

    let nowhere = tmp.path().join("nope");
    let e = load(
        &DatasetSpec::Folder(nowhere.clone()),
        Split::Train,
        tmp.path(),
        None,
    )
    .unwrap_err();
    assert!(e.to_string().contains(&nowhere.display().to_string()));
}

// ---------------------------------------------------------------- CIFAR-10 binary

/// A CIFAR record whose R, G, B planes are filled with distinct values per image.
fn cifar_record(label: u8, seed: u8) -> Vec<u8> {
    let mut r = vec![label];
    for plane in 0..3u8 {
        r.extend((0..1024).map(|p| {
            seed.wrapping_mul(31)
                .wrapping_add(plane * 80)
                .wrapping_add((p % 13) as u8)
        }));
    }
    r
}

#[test]
fn cifar_binary_round_trip_with_plane_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar10/cifar-10-batches-bin");
    let mut batch = Vec::new();
    for (label, seed) in [(0u8, 1u8), (9, 2), (4, 3)] {
        batch.extend(cifar_record(label, seed));
    }
    write(&dir.join("test_batch.bin"), &batch);
    let s = load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None).unwrap();
    assert_eq!(s.shape(), [3, 3, 32, 32]);
    assert_eq!(s.labels.as_deref(), Some(&[0u8, 9, 4][..]));
    for i in 0..3 {
        assert_eq!(s.image(i), &batch[i * 3073 + 1..(i + 1) * 3073]);
    }
    // Plane order: the first 1024 bytes are R, then G (+80), then B (+160).
    let img = s.image(1);
    assert_eq!(img[1024].wrapping_sub(img[0]), 80);
    assert_eq!(img[2048].wrapping_sub(img[0]), 160);

    // Train needs all five batches; with some present the error names the absent ones.
    write(&dir.join("data_batch_1.bin"), &batch);
    write(&dir.join("data_batch_2.bin"), &batch);
    let e = load(&DatasetSpec::Cifar10, Split::Train, tmp.path(), None).unwrap_err();
    assert!(e.to_string().contains("data_batch_3.bin"), "{e}");
    for i in 3..=5 {
        write(&dir.join(format!("data_batch_{i}.bin")), &batch);
    }
    let s = load(&DatasetSpec::Cifar10, Split::Train, tmp.path(), Some(7)).unwrap();
    assert_eq!(s.n, 7);
    assert_eq!(s.labels.as_deref(), Some(&[0u8, 9, 4, 0, 9, 4, 0][..]));

    // A truncated batch and a bad label are Corrupt naming the file.
    let bad = dir.join("test_batch.bin");
    write(&bad, &batch[..3073 * 2 + 100]);
    expect_corrupt(
        load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None),
        &bad,
        "truncated",
    );
    let mut wrong = batch.clone();
    wrong[3073] = 10;
    write(&bad, &wrong);
    expect_corrupt(
        load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None),
        &bad,
        "label 10",
    );
}

#[test]
fn cifar_binary_directly_in_cifar10_folder() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("cifar10/test_batch.bin"), &cifar_record(7, 5));
    let s = load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None).unwrap();
    assert_eq!((s.n, s.label(0)), (1, Some(7)));
}

// ---------------------------------------------------------------- CIFAR-10 python

/// Writes python batches with the venv's numpy: `test_batch` holds 4 images, each
/// `data_batch_i` holds 2; `<name>.raw` holds `arr.tobytes()` and `<name>.lbl` the labels.
fn write_python_batches(dir: &Path, protocol: u8, bytes_keys: bool) {
    let script = r#"
import pickle, sys, numpy as np
out, proto, bkeys = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
rng = np.random.default_rng(proto)
names = [("test_batch", 4)] + [(f"data_batch_{i}", 2) for i in range(1, 6)]
for name, n in names:
    arr = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, 10, size=n)]
    k = (lambda s: s.encode()) if bkeys else (lambda s: s)
    d = {k("batch_label"): k("testing batch 1 of 1"), k("labels"): labels, k("data"): arr,
         k("filenames"): [k(f"img_{i}.png") for i in range(n)]}
    with open(f"{out}/{name}", "wb") as f:
        pickle.dump(d, f, protocol=proto)
    open(f"{out}/{name}.raw", "wb").write(arr.tobytes())
    open(f"{out}/{name}.lbl", "wb").write(bytes(labels))
"#;
    std::fs::create_dir_all(dir).unwrap();
    let st = python()
        .args(["-c", script])
        .arg(dir)
        .arg(protocol.to_string())
        .arg(if bytes_keys { "1" } else { "0" })
        .status()
        .unwrap();
    assert!(st.success(), "python failed");
}

#[test]
fn cifar_python_batches_from_numpy() {
    for (protocol, bytes_keys) in [(2u8, false), (2, true), (4, true), (5, true), (5, false)] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cifar10/cifar-10-batches-py");
        write_python_batches(&dir, protocol, bytes_keys);
        let read = |name: &str, ext: &str| std::fs::read(dir.join(format!("{name}.{ext}"))).unwrap();
        let s = load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None)
            .unwrap_or_else(|e| panic!("protocol {protocol} bytes_keys {bytes_keys}: {e}"));
        assert_eq!(s.shape(), [4, 3, 32, 32]);
        assert_eq!(s.data, read("test_batch", "raw"), "protocol {protocol}");
        assert_eq!(s.labels.as_deref(), Some(&read("test_batch", "lbl")[..]));
        assert!(s.source.contains("python"), "{}", s.source);

        let t = load(&DatasetSpec::Cifar10, Split::Train, tmp.path(), None).unwrap();
        assert_eq!(t.n, 10);
        let want: Vec<u8> = (1..=5)
            .flat_map(|i| read(&format!("data_batch_{i}"), "raw"))
            .collect();
        assert_eq!(t.data, want);
    }
}

/// A Python 2 `cPickle` protocol-2 stream laid out like the real CIFAR-10 python batches
/// (byte-string keys, GLOBAL opcodes, BINSTRING data, BINPUT / LONG_BINPUT memo).
fn py2_cifar_pickle(data: &[u8], labels: &[u8]) -> Vec<u8> {
    let n = labels.len();
    let mut memo = 0u32;
    let mut put = |p: &mut Vec<u8>| {
        memo += 1;
        if memo < 256 {
            p.extend([b'q', memo as u8]);
        } else {
            p.push(b'r');
            p.extend(memo.to_le_bytes());
        }
    };
    let short = |p: &mut Vec<u8>, s: &[u8]| {
        p.extend([b'U', s.len() as u8]);
        p.extend_from_slice(s);
    };
    let mut p = b"\x80\x02}".to_vec();
    put(&mut p);
    p.push(b'(');
    short(&mut p, b"data");
    put(&mut p);
    p.extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\n");
    put(&mut p);
    p.extend_from_slice(b"cnumpy\nndarray\n");
    put(&mut p);
    p.extend_from_slice(b"K\x00\x85U\x01b\x87R");
    put(&mut p);
    p.extend_from_slice(b"(K\x01M");
    p.extend((n as u16).to_le_bytes());
    p.extend_from_slice(b"M\x00\x0c\x86cnumpy\ndtype\n");
    put(&mut p);
    p.extend_from_slice(b"U\x02u1K\x00K\x01\x87R");
    put(&mut p);
    p.extend_from_slice(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T");
    p.extend((data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p.extend_from_slice(b"tb");
    short(&mut p, b"labels");
    put(&mut p);
    p.push(b']');
    put(&mut p);
    p.push(b'(');
    for &l in labels {
        p.extend([b'K', l]);
    }
    p.push(b'e');
    short(&mut p, b"batch_label");
    put(&mut p);
    short(&mut p, b"testing batch 1 of 1");
    put(&mut p);
    short(&mut p, b"filenames");
    put(&mut p);
    p.push(b']');
    put(&mut p);
    p.push(b'(');
    for i in 0..n {
        short(&mut p, format!("img_{i:04}.png").as_bytes());
        put(&mut p);
    }
    p.extend_from_slice(b"eu.");
    p
}

#[test]
fn cifar_python2_layout() {
    let n = 300; // enough memo entries to need LONG_BINPUT
    let data: Vec<u8> = (0..n * 3072).map(|i| (i * 13 % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cifar10/test_batch");
    write(&file, &py2_cifar_pickle(&data, &labels));
    let s = load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None).unwrap();
    assert_eq!(s.shape(), [n, 3, 32, 32]);
    assert_eq!(s.data, data);
    assert_eq!(s.labels, Some(labels.clone()));

    // The hand-written stream is what Python itself reads as the same dict.
    let check = "import pickle,sys,numpy as np\n\
        d=pickle.load(open(sys.argv[1],'rb'),encoding='bytes')\n\
        a=d[b'data']; assert a.dtype==np.uint8 and a.shape==(300,3072), a.shape\n\
        assert a.tobytes()==bytes((i*13%251) for i in range(300*3072))\n\
        assert d[b'labels']==[i%10 for i in range(300)]\n\
        assert d[b'filenames'][299]==b'img_0299.png'";
    let st = python().args(["-c", check]).arg(&file).status().unwrap();
    assert!(
        st.success(),
        "python does not read the py2-layout pickle the same way"
    );
}

#[test]
fn malicious_pickles_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("pwned");
    let cmd = format!("touch {}", marker.display());
    // {'data': os.system(cmd)} via GLOBAL.
    let mut p = b"\x80\x02}q\x00(U\x04datacos\nsystem\nX".to_vec();
    p.extend((cmd.len() as u32).to_le_bytes());
    p.extend(cmd.as_bytes());
    p.extend_from_slice(b"\x85Ru.");
    let file = tmp.path().join("cifar10/test_batch");
    write(&file, &p);
    let r = load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None);
    expect_corrupt(r, &file, "os.system");
    assert!(!marker.exists());

    // The same through STACK_GLOBAL (protocol 4).
    let mut p = b"\x80\x04\x8c\x05posix\x8c\x06system\x93X".to_vec();
    p.extend((cmd.len() as u32).to_le_bytes());
    p.extend(cmd.as_bytes());
    p.extend_from_slice(b"\x85R.");
    write(&file, &p);
    let r = load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None);
    expect_corrupt(r, &file, "posix.system");
    assert!(!marker.exists());

    // Garbage and truncation are errors too, never panics.
    write(&file, b"\x80\x02}q\x00(U\x04data");
    expect_corrupt(
        load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None),
        &file,
        "",
    );
    write(&file, b"not a pickle at all");
    expect_corrupt(
        load(&DatasetSpec::Cifar10, Split::Test, tmp.path(), None),
        &file,
        "",
    );
}

// ---------------------------------------------------------------- CelebA

/// 178x218 image: blue background, a green 1-pixel ring just outside the centred
/// `CELEBA_CROP` square, and the square itself red.
fn celeba_like() -> RgbImage {
    let c = CELEBA_CROP;
    let (x0, y0) = ((178 - c) / 2, (218 - c) / 2);
    RgbImage::from_fn(178, 218, |x, y| {
        let inside = |m: u32| x + m >= x0 && x < x0 + c + m && y + m >= y0 && y < y0 + c + m;
        if inside(0) {
            Rgb([255, 0, 0])
        } else if inside(1) {
            Rgb([0, 255, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

#[test]
fn celeba_png_centre_crop_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("celeba/img_align_celeba");
    std::fs::create_dir_all(&dir).unwrap();
    celeba_like().save(dir.join("000001.png")).unwrap();
    let s = load(&DatasetSpec::CelebA, Split::Train, tmp.path(), None).unwrap();
    assert_eq!(s.shape(), [1, 3, 64, 64]);
    let img = s.image(0);
    let (r, g, b) = (&img[..4096], &img[4096..8192], &img[8192..]);
    assert!(r.iter().all(|&v| v >= 250), "red plane not all red");
    assert!(
        g.iter().chain(b).all(|&v| v <= 5),
        "the ring or background leaked in"
    );
}

#[test]
fn celeba_jpegs_splits_and_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("celeba/img_align_celeba");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 1..=12 {
        celeba_like().save(dir.join(format!("{i:06}.jpg"))).unwrap();
    }
    let calls = std::sync::Mutex::new(Vec::new());
    let cb = |done: usize, total: usize| calls.lock().unwrap().push((done, total));
    let s =
        data::load_with_progress(&DatasetSpec::CelebA, Split::Train, tmp.path(), None, Some(&cb)).unwrap();
    assert_eq!(s.shape(), [12, 3, 64, 64]);
    assert!(s.labels.is_none());
    let mut calls = calls.into_inner().unwrap();
    calls.sort();
    assert_eq!(calls.len(), 12);
    assert_eq!(calls.last(), Some(&(12, 12)));
    for i in 0..12 {
        let img = s.image(i);
        // JPEG chroma blurs the edges a little; the centre must be clean red.
        let mean = |p: &[u8]| p.iter().map(|&v| f64::from(v)).sum::<f64>() / p.len() as f64;
        assert!(mean(&img[..4096]) > 240.0 && mean(&img[8192..]) < 15.0);
        let centre = 32 * 64 + 32;
        assert!(img[centre] > 240 && img[4096 + centre] < 20 && img[8192 + centre] < 20);
    }
    // No partition file: the test split is the last 10% by name.
    let t = load(&DatasetSpec::CelebA, Split::Test, tmp.path(), None).unwrap();
    assert_eq!(t.n, 1);
    assert!(t.source.contains("10%"), "{}", t.source);

    // With the partition file: 0 and 1 are train, 2 is test.
    let parts: String = (1..=12)
        .map(|i| format!("{i:06}.jpg {}\n", [0, 1, 2][i % 3]))
        .collect();
    write(
        &tmp.path().join("celeba/list_eval_partition.txt"),
        parts.as_bytes(),
    );
    let t = load(&DatasetSpec::CelebA, Split::Test, tmp.path(), None).unwrap();
    assert_eq!(t.n, 4);
    let tr = load(&DatasetSpec::CelebA, Split::Train, tmp.path(), Some(3)).unwrap();
    assert_eq!(tr.n, 3);

    // A broken JPEG is an error naming it.
    let bad = dir.join("000013.jpg");
    write(&bad, b"\xff\xd8\xff\xe0 definitely not a jpeg");
    std::fs::remove_file(tmp.path().join("celeba/list_eval_partition.txt")).unwrap();
    expect_corrupt(
        load(&DatasetSpec::CelebA, Split::Test, tmp.path(), None),
        &bad,
        "decode",
    );
}

// ---------------------------------------------------------------- folder:PATH

#[test]
fn folder_of_pngs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("imgs");
    // Non-square RGB image, nested: centre crop keeps the middle 20x20 (green).
    let wide = RgbImage::from_fn(40, 20, |x, _| {
        if (10..30).contains(&x) {
            Rgb([0, 200, 0])
        } else {
            Rgb([200, 0, 0])
        }
    });
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    wide.save(root.join("a/b/1.png")).unwrap();
    let grey = image::GrayImage::from_pixel(16, 16, image::Luma([77]));
    grey.save(root.join("0.png")).unwrap();
    write(&root.join("notes.txt"), b"ignored");
    write(&root.join(".hidden.png"), b"ignored too");

    let spec: DatasetSpec = format!("folder:{}", root.display()).parse().unwrap();
    let opts = LoadOptions {
        folder_size: 16,
        ..LoadOptions::default()
    };
    let s = data::load_with_options(&spec, Split::Train, tmp.path(), &opts).unwrap();
    assert_eq!(s.shape(), [2, 3, 16, 16]);
    // Sorted by path: "0.png" < "a/b/1.png".
    assert!(s.image(0).iter().all(|&v| v == 77));
    let img = s.image(1);
    assert!(img[..256].iter().all(|&v| v <= 3), "red leaked past the crop");
    assert!(img[256..512].iter().all(|&v| v >= 197));
    // Default size 64, and all-greyscale folders load as one channel.
    std::fs::remove_file(root.join("a/b/1.png")).unwrap();
    let s = load(&spec, Split::Train, tmp.path(), None).unwrap();
    assert_eq!(s.shape(), [1, 1, 64, 64]);
    assert!(s.data.iter().all(|&v| v == 77));

    // An unreadable image is an error naming it.
    let bad = root.join("a/broken.png");
    write(&bad, b"\x89PNG\r\n\x1a\n garbage");
    expect_corrupt(load(&spec, Split::Train, tmp.path(), None), &bad, "decode");

    // train/ and test/ subfolders are the splits.
    let split_root = tmp.path().join("split");
    std::fs::create_dir_all(split_root.join("train")).unwrap();
    std::fs::create_dir_all(split_root.join("test")).unwrap();
    for i in 0..3 {
        grey.save(split_root.join(format!("train/{i}.png"))).unwrap();
    }
    grey.save(split_root.join("test/x.png")).unwrap();
    let spec = DatasetSpec::Folder(split_root);
    assert_eq!(load(&spec, Split::Train, tmp.path(), None).unwrap().n, 3);
    assert_eq!(load(&spec, Split::Test, tmp.path(), None).unwrap().n, 1);
}

// ---------------------------------------------------------------- fetch

#[test]
fn fetch_without_network_explains() {
    let tmp = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: refused at once, no real network involved.
    let e = data::fetch_from(&DatasetSpec::Mnist, tmp.path(), Some("http://127.0.0.1:9/mnist")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::Download { .. }), "{e:?}");
    assert!(
        msg.contains("http://127.0.0.1:9/mnist/train-images-idx3-ubyte.gz"),
        "{msg}"
    );
    assert!(
        msg.contains(&tmp.path().join("mnist").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("no internet"), "{msg}");
    assert!(!tmp.path().join("mnist/train-images-idx3-ubyte.gz.part").exists());

    let e = data::fetch(&DatasetSpec::CelebA, tmp.path()).unwrap_err();
    assert!(matches!(e, DataError::ManualDownload { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"),
        "{msg}"
    );
    assert!(msg.contains("img_align_celeba"), "{msg}");
}

// ---------------------------------------------------------------- real data

fn real_dataset(spec: &DatasetSpec, dirs: &[PathBuf]) -> (ImageSet, ImageSet) {
    // The loader looks in <data>/<name>/ (and /usr/share for Fashion-MNIST); use the first
    // location that holds the files.
    let name = spec.to_string();
    for d in dirs {
        if d.join(&name).join("train-images-idx3-ubyte.gz").is_file() {
            let train = load(spec, Split::Train, d, None).unwrap();
            let test = load(spec, Split::Test, d, None).unwrap();
            return (train, test);
        }
    }
    panic!("real {name} not found in {dirs:?}: run `make setup` (it installs MNIST and Fashion-MNIST)");
}

fn check_real(train: &ImageSet, test: &ImageSet, mean_range: std::ops::Range<f64>) {
    assert_eq!(train.shape(), [60000, 1, 28, 28]);
    assert_eq!(test.shape(), [10000, 1, 28, 28]);
    let mean = train.data.iter().map(|&v| v as u64).sum::<u64>() as f64 / train.data.len() as f64;
    assert!(mean_range.contains(&(mean / 255.0)), "train mean {mean}");
    let mut counts = [0usize; 10];
    for &l in train.labels.as_ref().unwrap() {
        counts[l as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c > 5000), "{counts:?}");
}

#[test]
fn real_fashion_mnist() {
    let dirs = [repo_root().join("data"), PathBuf::from("/usr/share/datasets")];
    let (train, test) = real_dataset(&DatasetSpec::FashionMnist, &dirs);
    check_real(&train, &test, 0.25..0.32);
}

#[test]
fn real_mnist() {
    let (train, test) = real_dataset(&DatasetSpec::Mnist, &[repo_root().join("data")]);
    check_real(&train, &test, 0.11..0.15);
}
