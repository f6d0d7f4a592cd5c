//! RDMA, AMD and TPU discovery against fake sysfs trees, and the generated specs applied.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use oci_spec::runtime::{PosixRlimitType, Spec};
use warren_gpu::cdi::{CdiSpec, QualifiedName, Registry, SpecFormat};
use warren_gpu::sysfs::CharDev;
use warren_gpu::{amd, rdma, tpu};

use common::{symlink, write};

fn inject(spec_file: &CdiSpec, spec: &mut Spec, names: &[&str]) {
    // Round-trip through YAML so what we inject is what a file on disk would hold.
    let parsed = CdiSpec::parse(spec_file.to_yaml().unwrap().as_bytes(), SpecFormat::Yaml).unwrap();
    assert_eq!(&parsed, spec_file);
    let mut registry = Registry::new();
    registry.add_spec(parsed, "<generated>").unwrap();
    let names: Vec<QualifiedName> = names.iter().map(|n| n.parse().unwrap()).collect();
    registry.inject(spec, &names).unwrap();
}

fn devices(spec: &Spec) -> Vec<(String, i64, i64)> {
    spec.linux()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| (d.path().display().to_string(), d.major(), d.minor()))
        .collect()
}

fn rdma_tree(sys: &Path) {
    let class = sys.join("class");
    symlink(
        "../../../devices/pci0000:16/0000:17:00.0",
        &class.join("infiniband/mlx5_0/device"),
    );
    write(
        &class.join("infiniband/mlx5_0/ports/1/gid_attrs/ndevs/0"),
        "ens1f0\n",
    );
    write(
        &class.join("infiniband/mlx5_0/ports/1/gid_attrs/ndevs/1"),
        "ens1f0\n",
    );
    write(
        &class.join("infiniband/mlx5_1/ports/1/gid_attrs/ndevs/0"),
        "ens1f1\n",
    );
    write(&class.join("infiniband_verbs/abi_version"), "6\n");
    for (entry, ibdev, dev) in [
        ("uverbs0", "mlx5_0", "231:192"),
        ("uverbs1", "mlx5_1", "231:193"),
    ] {
        write(
            &class.join("infiniband_verbs").join(entry).join("ibdev"),
            &format!("{ibdev}\n"),
        );
        write(
            &class.join("infiniband_verbs").join(entry).join("dev"),
            &format!("{dev}\n"),
        );
    }
    write(&class.join("infiniband_mad/abi_version"), "5\n");
    for (entry, ibdev, dev) in [
        ("umad0", "mlx5_0", "231:0"),
        ("issm0", "mlx5_0", "231:64"),
        ("umad1", "mlx5_1", "231:1"),
        ("issm1", "mlx5_1", "231:65"),
    ] {
        write(
            &class.join("infiniband_mad").join(entry).join("ibdev"),
            &format!("{ibdev}\n"),
        );
        write(
            &class.join("infiniband_mad").join(entry).join("dev"),
            &format!("{dev}\n"),
        );
    }
    write(&class.join("misc/rdma_cm/dev"), "10:58\n");
}

#[test]
fn rdma_hcas_from_sysfs_with_memlock_and_rdma_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let sys = tmp.path().join("sys");
    rdma_tree(&sys);
    let inv = rdma::discover(&sys).unwrap();
    assert_eq!(inv.hcas.len(), 2);
    let h0 = &inv.hcas[0];
    assert_eq!(h0.name, "mlx5_0");
    assert_eq!(h0.pci_address.as_deref(), Some("0000:17:00.0"));
    assert_eq!(h0.net_devices, ["ens1f0"]);
    assert_eq!(
        h0.uverbs,
        Some(CharDev {
            path: "/dev/infiniband/uverbs0".into(),
            numbers: Some((231, 192))
        })
    );
    assert_eq!(h0.umad[0].numbers, Some((231, 0)));
    assert_eq!(h0.issm[0].numbers, Some((231, 64)));
    assert_eq!(inv.hcas[1].net_devices, ["ens1f1"]);
    assert_eq!(rdma::net_devices(&sys, "mlx5_1").unwrap(), ["ens1f1"]);
    assert_eq!(inv.rdma_cm.as_ref().unwrap().numbers, Some((10, 58)));

    let spec_file = rdma::generate(&inv, Path::new("/")).unwrap();
    assert_eq!(spec_file.kind, rdma::KIND);
    // No hostPath, names start with a letter: the oldest version suffices.
    assert_eq!(spec_file.cdi_version, "0.3.0");
    let names: Vec<_> = spec_file.devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["mlx5_0", "mlx5_1", "all"]);

    let mut spec = Spec::default();
    inject(&spec_file, &mut spec, &["warren.dev/rdma=mlx5_0"]);
    assert_eq!(
        devices(&spec),
        [
            ("/dev/infiniband/rdma_cm".to_string(), 10, 58),
            ("/dev/infiniband/uverbs0".to_string(), 231, 192),
            ("/dev/infiniband/umad0".to_string(), 231, 0),
            ("/dev/infiniband/issm0".to_string(), 231, 64),
        ]
    );

    rdma::apply_limits(
        &mut spec,
        &["mlx5_0"],
        rdma::RdmaLimits {
            hca_handles: Some(4),
            hca_objects: Some(1000),
        },
    )
    .unwrap();
    let rlimits = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    let memlock: Vec<_> = rlimits
        .iter()
        .filter(|r| r.typ() == PosixRlimitType::RlimitMemlock)
        .collect();
    assert_eq!(memlock.len(), 1);
    assert_eq!((memlock[0].soft(), memlock[0].hard()), (u64::MAX, u64::MAX));
    // The existing NOFILE limit stays.
    assert!(
        rlimits
            .iter()
            .any(|r| r.typ() == PosixRlimitType::RlimitNofile)
    );
    let rdma_limits = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .rdma()
        .clone()
        .unwrap();
    let l = rdma_limits.get("mlx5_0").unwrap();
    assert_eq!((l.hca_handles(), l.hca_objects()), (Some(4), Some(1000)));
    // Applying twice keeps one memlock entry.
    rdma::apply_limits(&mut spec, &["mlx5_0"], rdma::RdmaLimits::default()).unwrap();
    let rlimits = spec.process().as_ref().unwrap().rlimits().clone().unwrap();
    assert_eq!(
        rlimits
            .iter()
            .filter(|r| r.typ() == PosixRlimitType::RlimitMemlock)
            .count(),
        1
    );
}

#[test]
fn no_infiniband_means_no_rdma_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = rdma::discover(tmp.path()).unwrap();
    assert!(inv.hcas.is_empty() && inv.rdma_cm.is_none());
    assert!(rdma::generate(&inv, Path::new("/")).is_none());
}

#[test]
fn bad_sysfs_dev_file_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sys = tmp.path();
    rdma_tree(sys);
    write(&sys.join("class/infiniband_verbs/uverbs0/dev"), "garbage\n");
    let err = rdma::discover(sys).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("uverbs0/dev") && msg.contains("garbage"),
        "{msg}"
    );
}

fn pci_function(sys: &Path, bdf: &str, vendor: &str, device: &str) {
    write(
        &sys.join("devices/pci0000:00").join(bdf).join("vendor"),
        &format!("{vendor}\n"),
    );
    write(
        &sys.join("devices/pci0000:00").join(bdf).join("device"),
        &format!("{device}\n"),
    );
    symlink(
        &format!("../../../devices/pci0000:00/{bdf}"),
        &sys.join("bus/pci/devices").join(bdf),
    );
}

#[test]
fn amd_render_nodes_and_kfd_from_sysfs() {
    let tmp = tempfile::tempdir().unwrap();
    let sys = tmp.path().join("sys");
    for (render, bdf, vendor) in [
        ("renderD128", "0000:03:00.0", "0x1002"),
        ("renderD129", "0000:04:00.0", "0x10de"),
        ("renderD130", "0000:02:00.0", "0x1002"),
    ] {
        pci_function(&sys, bdf, vendor, "0x74a1");
        let dir = sys.join("class/drm").join(render);
        write(&dir.join("dev"), &format!("226:{}\n", &render[7..]));
        symlink(
            &format!("../../../devices/pci0000:00/{bdf}"),
            &dir.join("device"),
        );
    }
    std::fs::create_dir_all(sys.join("class/drm/card0")).unwrap();
    write(&sys.join("class/kfd/kfd/dev"), "235:0\n");

    let inv = amd::discover(&sys).unwrap();
    let found: Vec<_> = inv
        .gpus
        .iter()
        .map(|g| {
            (
                g.index,
                g.pci_address.clone().unwrap(),
                g.render_node.path.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                0,
                "0000:02:00.0".to_string(),
                "/dev/dri/renderD130".to_string()
            ),
            (
                1,
                "0000:03:00.0".to_string(),
                "/dev/dri/renderD128".to_string()
            ),
        ]
    );
    assert_eq!(inv.kfd.as_ref().unwrap().numbers, Some((235, 0)));

    let dev_root = tmp.path().join("devroot");
    let spec_file = amd::generate(&inv, &dev_root).unwrap();
    assert_eq!(spec_file.kind, "amd.com/gpu");
    assert_eq!(spec_file.cdi_version, "0.5.0");
    assert_eq!(
        spec_file.container_edits.device_nodes[0]
            .host_path
            .as_deref(),
        Some(dev_root.join("dev/kfd").to_str().unwrap())
    );
    let mut spec = Spec::default();
    inject(&spec_file, &mut spec, &["amd.com/gpu=1"]);
    assert_eq!(
        devices(&spec),
        [
            ("/dev/kfd".to_string(), 235, 0),
            ("/dev/dri/renderD128".to_string(), 226, 128),
        ]
    );
}

#[test]
fn tpus_by_google_pci_vendor_via_accel_or_vfio() {
    let tmp = tempfile::tempdir().unwrap();
    let sys = tmp.path().join("sys");
    pci_function(&sys, "0000:00:01.0", "0x8086", "0x1234");
    pci_function(&sys, "0000:00:04.0", "0x1ae0", "0x005e");
    write(
        &sys.join("devices/pci0000:00/0000:00:04.0/accel/accel0/dev"),
        "121:0\n",
    );
    pci_function(&sys, "0000:00:05.0", "0x1ae0", "0x0063");
    let f5 = sys.join("devices/pci0000:00/0000:00:05.0");
    symlink("../../../bus/pci/drivers/vfio-pci", &f5.join("driver"));
    symlink("../../../kernel/iommu_groups/7", &f5.join("iommu_group"));
    write(&sys.join("class/vfio/7/dev"), "244:0\n");
    write(&sys.join("class/misc/vfio/dev"), "10:196\n");
    // A TPU neither bound to vfio-pci nor with an accel node is skipped.
    pci_function(&sys, "0000:00:06.0", "0x1ae0", "0x0063");

    let inv = tpu::discover(&sys).unwrap();
    assert_eq!(inv.tpus.len(), 2);
    assert_eq!(inv.tpus[0].device_id, 0x5e);
    assert!(matches!(&inv.tpus[0].access, tpu::TpuAccess::Accel(d) if d.path == "/dev/accel0"));
    assert!(matches!(&inv.tpus[1].access, tpu::TpuAccess::Vfio { group, .. } if group == "7"));
    assert_eq!(inv.vfio.as_ref().unwrap().numbers, Some((10, 196)));

    let spec_file = tpu::generate(&inv, Path::new("/")).unwrap();
    assert_eq!(spec_file.kind, "google.com/tpu");
    let mut spec = Spec::default();
    inject(&spec_file, &mut spec, &["google.com/tpu=all"]);
    assert_eq!(
        devices(&spec),
        [
            ("/dev/vfio/vfio".to_string(), 10, 196),
            ("/dev/accel0".to_string(), 121, 0),
            ("/dev/vfio/7".to_string(), 244, 0),
        ]
    );
    let rules: Vec<String> = spec
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(rules.ends_with(&[
        "c 10:196 rwm".to_string(),
        "c 121:0 rwm".to_string(),
        "c 244:0 rwm".to_string()
    ]));
}
