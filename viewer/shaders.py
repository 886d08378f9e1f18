"""GLSL 3.30 core sources for the skeleton viewer.

- ``MESH``: instanced lit meshes (bone cylinders, contact discs) and their planar shadows.
- ``SPHERE``: instanced joint spheres as ray-traced impostors (one quad each, exact silhouette and depth):
  a mesh sphere costs hundreds of triangles, which software GL (llvmpipe) pays for on the CPU.
- ``SKY`` / ``GRID``: the floor is the clear colour (free), a gradient quad above the floor's far edge is
  the sky, and grid lines are generated from gl_VertexID: software GL (llvmpipe) is short of fill rate, and a
  per-pixel procedural grid cost ~15x a plain full-screen pass there.
- ``LINE``: plain lines (root trajectories).
"""

from __future__ import annotations

# Shared lighting: key light + fill + hemisphere ambient + a little specular and rim. All vectors in one space.
_SHADE = """
vec3 shade(vec3 n, vec3 v, vec3 l, vec3 up, vec3 base) {
    if (dot(n, v) < 0.0) n = -n;
    float key = max(dot(n, l), 0.0);
    vec3 fill_dir = normalize(-l + 1.3 * up * dot(l, up));
    float fill = max(dot(n, fill_dir), 0.0) * 0.25;
    float hemi = 0.5 + 0.5 * dot(n, up);
    vec3 ambient = base * mix(vec3(0.22, 0.21, 0.20), vec3(0.42, 0.45, 0.50), hemi);
    float spec = pow(max(dot(n, normalize(l + v)), 0.0), 40.0) * 0.35;
    float rim = pow(1.0 - max(dot(n, v), 0.0), 3.0) * 0.25;
    return ambient + base * (0.75 * key + fill) + vec3(spec + rim);
}
"""

MESH_VERT = """
#version 330 core
layout(location = 0) in vec3 a_pos;
layout(location = 1) in vec3 a_normal;
layout(location = 2) in vec4 i_m0;
layout(location = 3) in vec4 i_m1;
layout(location = 4) in vec4 i_m2;
layout(location = 5) in vec4 i_m3;
layout(location = 6) in vec4 i_colour;
uniform mat4 u_view_proj;
uniform mat4 u_shadow;      // planar projection onto the ground along the light (shadow pass only)
uniform int u_shadow_pass;
out vec3 v_normal;
out vec3 v_world;
out vec4 v_colour;
void main() {
    mat4 m = mat4(i_m0, i_m1, i_m2, i_m3);
    vec4 world = m * vec4(a_pos, 1.0);
    if (u_shadow_pass == 1) world = u_shadow * world;
    // Bone frames are orthogonal with equal scale on the radial axes, so mat3(m) keeps normals' directions.
    v_normal = normalize(mat3(m) * a_normal);
    v_world = world.xyz / world.w;
    v_colour = i_colour;
    gl_Position = u_view_proj * world;
}
"""

MESH_FRAG = (
    """
#version 330 core
in vec3 v_normal;
in vec3 v_world;
in vec4 v_colour;
uniform vec3 u_eye;
uniform vec3 u_light_dir;     // towards the light
uniform int u_shadow_pass;
uniform vec4 u_shadow_colour;
out vec4 frag;
"""
    + _SHADE
    + """
void main() {
    if (u_shadow_pass == 1) { frag = u_shadow_colour; return; }
    vec3 colour = shade(normalize(v_normal), normalize(u_eye - v_world), normalize(u_light_dir),
                        vec3(0.0, 1.0, 0.0), v_colour.rgb);
    frag = vec4(colour, v_colour.a);
}
"""
)

SPHERE_VERT = """
#version 330 core
layout(location = 0) in vec3 a_pos;      // quad corner in [-1, 1]^2
layout(location = 2) in vec4 i_m0;
layout(location = 3) in vec4 i_m1;
layout(location = 4) in vec4 i_m2;
layout(location = 5) in vec4 i_m3;
layout(location = 6) in vec4 i_colour;
uniform mat4 u_view;
uniform mat4 u_proj;
out vec3 v_view_pos;       // this fragment's point on the camera-facing quad, view space
flat out vec3 v_centre;    // sphere centre, view space
flat out float v_radius;
flat out vec4 v_colour;
void main() {
    float r = length(i_m0.xyz);
    vec3 c = (u_view * vec4(i_m3.xyz, 1.0)).xyz;
    // Quad in front of the sphere, large enough to cover its perspective silhouette.
    float grow = 1.0 + 1.5 * r / max(-c.z, 1e-4);
    vec3 p = c + vec3(a_pos.xy * r * grow, r);
    v_view_pos = p;
    v_centre = c;
    v_radius = r;
    v_colour = i_colour;
    gl_Position = u_proj * vec4(p, 1.0);
}
"""

SPHERE_FRAG = (
    """
#version 330 core
in vec3 v_view_pos;
flat in vec3 v_centre;
flat in float v_radius;
flat in vec4 v_colour;
uniform mat4 u_view;
uniform mat4 u_proj;
uniform vec3 u_light_dir;
out vec4 frag;
"""
    + _SHADE
    + """
void main() {
    vec3 d = normalize(v_view_pos);          // ray from the eye (view-space origin)
    float b = dot(d, v_centre);
    float h = b * b - dot(v_centre, v_centre) + v_radius * v_radius;
    if (h < 0.0) discard;
    vec3 hit = d * (b - sqrt(h));
    vec3 n = (hit - v_centre) / v_radius;
    vec4 clip = u_proj * vec4(hit, 1.0);
    gl_FragDepth = clip.z / clip.w * 0.5 + 0.5;
    mat3 rot = mat3(u_view);
    vec3 colour = shade(n, -d, normalize(rot * u_light_dir), rot * vec3(0.0, 1.0, 0.0), v_colour.rgb);
    frag = vec4(colour, v_colour.a);
}
"""
)

SKY_VERT = """
#version 330 core
// A quad from u_horizon (NDC y, just below where the floor fades out) to the top of the screen.
uniform float u_horizon;
out float v_y;
void main() {
    vec2 c = vec2(float(gl_VertexID % 2) * 2.0 - 1.0, gl_VertexID < 2 ? u_horizon : 1.0);
    v_y = (c.y - u_horizon) / max(1.0 - u_horizon, 1e-3);
    gl_Position = vec4(c, 0.0, 1.0);
}
"""

SKY_FRAG = """
#version 330 core
// Below the quad the clear colour is the floor; the quad's bottom blends floor -> sky (a soft horizon).
in float v_y;
uniform vec3 u_top;
uniform vec3 u_bottom;
uniform vec3 u_floor;
uniform float u_blend;      // fraction of the quad over which the floor fades into the sky
out vec4 frag;
void main() {
    vec3 sky = mix(u_bottom, u_top, smoothstep(u_blend, 0.85, v_y));
    frag = vec4(mix(u_floor, sky, smoothstep(0.0, max(u_blend, 1e-3), v_y)), 1.0);
}
"""

# Grid lines from gl_VertexID: u_lines lines per direction, each cut into u_segments pieces so the fade
# with distance is per vertex. Lines sit on world multiples of u_step (u_origin is snapped by the caller).
GRID_VERT = """
#version 330 core
uniform mat4 u_view_proj;
uniform vec3 u_centre;
uniform vec2 u_origin;
uniform float u_step;
uniform float u_major_every;
uniform int u_lines;
uniform int u_segments;
uniform float u_fade;
uniform vec3 u_line_colour;
uniform vec3 u_floor_colour;
out vec4 v_colour;
void main() {
    int per_line = 2 * u_segments;
    int line = gl_VertexID / per_line;
    int k = gl_VertexID % per_line;
    int dir = line / u_lines;                 // 0: x = const (runs along z), 1: z = const (runs along x)
    float half_n = float(u_lines - 1) * 0.5;
    float across = (float(line % u_lines) - half_n) * u_step;
    float along = (float(k / 2 + k % 2) / float(u_segments) * 2.0 - 1.0) * half_n * u_step;
    vec2 p = u_origin + (dir == 0 ? vec2(across, along) : vec2(along, across));
    float coord = dir == 0 ? p.x : p.y;
    float cells = coord / u_step;
    bool major = abs(cells / u_major_every - round(cells / u_major_every)) < 1e-3;
    bool axis = abs(coord) < u_step * 1e-3;
    vec3 c = major ? u_line_colour : mix(u_floor_colour, u_line_colour, 0.5);
    if (axis) c = dir == 0 ? vec3(0.46, 0.53, 0.68) : vec3(0.68, 0.47, 0.45);  // Z axis, X axis (muted)
    float a = 1.0 - smoothstep(u_fade * 0.3, u_fade * 0.9, length(p - u_centre.xz));
    v_colour = vec4(c, a * (major || axis ? 0.9 : 0.55));
    gl_Position = u_view_proj * vec4(p.x, u_centre.y, p.y, 1.0);
}
"""

GRID_FRAG = """
#version 330 core
in vec4 v_colour;
out vec4 frag;
void main() { frag = v_colour; }
"""

LINE_VERT = """
#version 330 core
layout(location = 0) in vec3 a_pos;
uniform mat4 u_view_proj;
uniform float u_y;          // paths are drawn flat on the floor at this height
void main() { gl_Position = u_view_proj * vec4(a_pos.x, u_y, a_pos.z, 1.0); }
"""

LINE_FRAG = """
#version 330 core
uniform vec4 u_colour;
out vec4 frag;
void main() { frag = u_colour; }
"""
