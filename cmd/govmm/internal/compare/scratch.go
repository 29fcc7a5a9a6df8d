package compare

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The disk measures run fio on a scratch file system that every runtime
// gets the same way a user would give it: an ext4 on a host block device,
// named as a mount of the bundle (runc and crun mount it on the host's
// kernel; govmm and QEMU attach the device as a virtio disk and the
// guest mounts it). The device is a loop device over a file in TMPDIR.
const (
	scratchMount = "/scratch"
	scratchSize  = 512 << 20
)

// setUpScratch makes the file system and its loop device and returns the
// device and what removes it.
func setUpScratch(dir string) (string, func(), error) {
	img := filepath.Join(dir, "scratch.img")
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(scratchSize)
		f.Close()
	}
	if err != nil {
		return "", nil, fmt.Errorf("scratch disk: %w", err)
	}
	// Initialised in full now, so that no instance pays for the lazy
	// init of inode tables and journal in its background.
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", img).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("scratch disk: mkfs.ext4: %v: %s", err, strings.TrimSpace(string(out)))
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		return "", nil, fmt.Errorf("scratch disk: losetup: %v: %s (modprobe loop)", err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	return dev, func() { exec.Command("losetup", "-d", dev).Run() }, nil
}

// addScratch mounts dev at /scratch in the bundle's config, and lets the
// container use it: crun applies the device cgroup before it mounts, so a
// block device the rules do not allow cannot be mounted (EPERM), where
// runc mounts first. A VM reports the rule as one it does not honour.
func addScratch(dev string, major, minor uint32) func(map[string]any) {
	return func(cfg map[string]any) {
		ms, _ := cfg["mounts"].([]any)
		cfg["mounts"] = append(ms, map[string]any{
			"destination": scratchMount, "type": "ext4", "source": dev,
			"options": []any{"rw", "noatime"},
		})
		linux, _ := cfg["linux"].(map[string]any)
		if linux == nil {
			linux = map[string]any{}
			cfg["linux"] = linux
		}
		res, _ := linux["resources"].(map[string]any)
		if res == nil {
			res = map[string]any{}
			linux["resources"] = res
		}
		devs, _ := res["devices"].([]any)
		res["devices"] = append(devs, map[string]any{
			"allow": true, "type": "b", "major": major, "minor": minor, "access": "rwm",
		})
	}
}

// deviceNumbers are a block device's major and minor numbers.
func deviceNumbers(dev string) (uint32, uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0, 0, err
	}
	return unix.Major(st.Rdev), unix.Minor(st.Rdev), nil
}

// diskJob: sequential writes and reads of 1 MiB, then random 4 KiB reads
// at depth 8, each for 3 s, all O_DIRECT, on one file of the scratch file
// system; fio prints a terse line per phase.
const diskJob = "fio --filename=" + scratchMount + "/fio.dat --size=64M --direct=1 --ioengine=libaio --runtime=3 --time_based --minimal" +
	" --name=seqwrite --rw=write --bs=1M --iodepth=1" +
	" --name=seqread --stonewall --rw=read --bs=1M --iodepth=1" +
	" --name=randread --stonewall --rw=randread --bs=4k --iodepth=8"

// fioResults reads fio's terse (version 3) lines: per job, the read and
// write bandwidth in KiB/s (fields 7 and 48) and IOPS (8 and 49).
func fioResults(lines []string) (map[string]fioJob, error) {
	out := map[string]fioJob{}
	for _, l := range lines {
		f := strings.Split(strings.TrimSpace(l), ";")
		if len(f) < 49 || f[0] != "3" {
			continue
		}
		var j fioJob
		var err error
		for _, v := range []struct {
			dst *float64
			i   int
		}{{&j.readKiBs, 6}, {&j.readIOPS, 7}, {&j.writeKiBs, 47}, {&j.writeIOPS, 48}} {
			if *v.dst, err = strconv.ParseFloat(f[v.i], 64); err != nil {
				return nil, fmt.Errorf("fio: job %s: field %d: %w", f[2], v.i+1, err)
			}
		}
		if f[4] != "0" {
			return nil, fmt.Errorf("fio: job %s: error %s", f[2], f[4])
		}
		out[f[2]] = j
	}
	return out, nil
}

type fioJob struct{ readKiBs, readIOPS, writeKiBs, writeIOPS float64 }
