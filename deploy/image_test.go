package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/internal/testenv"
)

// TestMakeImage runs `make image` and opens the image it saved: a
// docker-archive whose config runs /kguard as uid 65532 and whose only
// layer holds the binary make built (byte for byte), the CA bundle and the
// policies, and no shell.
func TestMakeImage(t *testing.T) {
	if _, err := exec.LookPath("buildah"); err != nil {
		if _, perr := exec.LookPath("podman"); perr != nil {
			if testenv.Required() {
				t.Fatal("buildah is required to build the image (test/deps.sh installs it)")
			}
			t.Skip("neither buildah nor podman is installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	image := "localhost/kguard-test:" + hex.EncodeToString(suffix)
	archive := filepath.Join(t.TempDir(), "image.tar")
	cmd := exec.CommandContext(ctx, "make", "-C", "..", "image", "IMAGE="+image, "IMAGE_ARCHIVE="+archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		for _, tool := range []string{"buildah", "podman"} {
			if _, err := exec.LookPath(tool); err == nil {
				_ = exec.Command(tool, "--storage-driver", "vfs", "rmi", image).Run()
				return
			}
		}
	})
	files, err := readDockerArchive(archive)
	if err != nil {
		t.Fatal(err)
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	if !slices.Contains(manifest[0].RepoTags, image) {
		t.Errorf("archive tags %v, want %s", manifest[0].RepoTags, image)
	}
	var cfg struct {
		Config struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]struct{}
		} `json:"config"`
	}
	if err := json.Unmarshal(files[manifest[0].Config], &cfg); err != nil {
		t.Fatalf("image config: %v", err)
	}
	c := cfg.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/kguard" ||
		strings.Join(c.Cmd, " ") != "serve --config /etc/kguard/kguard.yaml" {
		t.Errorf("image runs %v %v as %q", c.Entrypoint, c.Cmd, c.User)
	}
	if len(manifest[0].Layers) != 1 {
		t.Fatalf("%d layers, want the one FROM scratch adds", len(manifest[0].Layers))
	}
	layer, err := readTar(bytes.NewReader(files[manifest[0].Layers[0]]))
	if err != nil {
		t.Fatalf("layer: %v", err)
	}
	bin, err := os.ReadFile("../bin/kguard")
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(layer["kguard"]) != sha256.Sum256(bin) {
		t.Error("/kguard in the image is not bin/kguard")
	}
	for _, want := range []string{"etc/ssl/certs/ca-certificates.crt", "policies/kguard.rego", "policies/acl.rego"} {
		if len(layer[want]) == 0 {
			t.Errorf("image has no %s", want)
		}
	}
	for name := range layer {
		if strings.HasPrefix(name, "bin/") || strings.HasSuffix(name, "/sh") || name == "policies/embed.go" {
			t.Errorf("image holds %s", name)
		}
	}
	t.Logf("IMAGE %s: %d files, layer %d bytes, archive %d bytes", image, len(layer), len(files[manifest[0].Layers[0]]), fileSize(archive))
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func readDockerArchive(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readTar(f)
}

// readTar returns the regular files of a tar stream by their cleaned path.
func readTar(r io.Reader) (map[string][]byte, error) {
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			if h.Typeflag == tar.TypeSymlink {
				out[strings.TrimPrefix(filepath.Clean(h.Name), "/")] = []byte("symlink:" + h.Linkname)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(filepath.Clean(h.Name), "/")] = b
	}
}
