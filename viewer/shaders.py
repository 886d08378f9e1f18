"""GLSL 3.30 core sources for the skeleton viewer: instanced lit meshes, the ground grid, lines, backdrop."""

from __future__ import annotations

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

MESH_FRAG = """
#version 330 core
in vec3 v_normal;
in vec3 v_world;
in vec4 v_colour;
uniform vec3 u_eye;
uniform vec3 u_light_dir;     // towards the light
uniform int u_shadow_pass;
uniform vec4 u_shadow_colour;
out vec4 frag;
void main() {
    if (u_shadow_pass == 1) { frag = u_shadow_colour; return; }
    vec3 n = normalize(v_normal);
    vec3 v = normalize(u_eye - v_world);
    if (dot(n, v) < 0.0) n = -n;
    vec3 l = normalize(u_light_dir);
    float key = max(dot(n, l), 0.0);
    float fill = max(dot(n, normalize(vec3(-l.x, 0.3, -l.z))), 0.0) * 0.25;
    float hemi = 0.5 + 0.5 * n.y;
    vec3 base = v_colour.rgb;
    vec3 ambient = base * mix(vec3(0.22, 0.21, 0.20), vec3(0.42, 0.45, 0.50), hemi);
    float spec = pow(max(dot(n, normalize(l + v)), 0.0), 40.0) * 0.35;
    float rim = pow(1.0 - max(dot(n, v), 0.0), 3.0) * 0.25;
    vec3 colour = ambient + base * (0.75 * key + fill) + vec3(spec + rim);
    frag = vec4(colour, v_colour.a);
}
"""

GROUND_VERT = """
#version 330 core
layout(location = 0) in vec3 a_pos;
uniform mat4 u_view_proj;
uniform vec3 u_centre;
uniform float u_extent;
uniform float u_ground_y;
out vec3 v_world;
void main() {
    vec3 world = vec3(u_centre.x + a_pos.x * u_extent, u_ground_y, u_centre.z + a_pos.z * u_extent);
    v_world = world;
    gl_Position = u_view_proj * vec4(world, 1.0);
}
"""

GROUND_FRAG = """
#version 330 core
in vec3 v_world;
uniform float u_step;        // minor grid cell in world units
uniform int u_major_every;
uniform vec3 u_centre;
uniform float u_fade;        // distance at which the floor fades into the backdrop
uniform vec3 u_floor_colour;
uniform vec3 u_line_colour;
out vec4 frag;
float grid(vec2 p, float step, float width) {
    vec2 g = p / step;
    vec2 fw = max(fwidth(g), vec2(1e-6));
    vec2 d = abs(fract(g - 0.5) - 0.5) / fw;
    // Fade lines out where cells shrink to a few pixels (towards the horizon) instead of a bright moire band.
    float density = 1.0 - smoothstep(0.08, 0.3, max(fw.x, fw.y));
    return (1.0 - min(min(d.x, d.y) / width, 1.0)) * density;
}
void main() {
    vec2 p = v_world.xz;
    float minor = grid(p, u_step, 1.0) * 0.45;
    float major = grid(p, u_step * float(u_major_every), 1.4);
    vec2 axis_fw = max(fwidth(p), vec2(1e-6));
    vec2 axis_d = abs(p) / axis_fw;
    float axis_density = 1.0 - smoothstep(0.08, 0.3, max(axis_fw.x, axis_fw.y) / u_step);
    float line = max(minor, major);
    vec3 colour = mix(u_floor_colour, u_line_colour, line);
    colour = mix(colour, vec3(0.70, 0.36, 0.34), (1.0 - min(axis_d.y / 1.2, 1.0)) * 0.7 * axis_density);  // X axis
    colour = mix(colour, vec3(0.36, 0.48, 0.74), (1.0 - min(axis_d.x / 1.2, 1.0)) * 0.7 * axis_density);  // Z axis
    float dist = length(v_world.xz - u_centre.xz);
    float alpha = 1.0 - smoothstep(u_fade * 0.45, u_fade, dist);
    frag = vec4(colour, alpha);
}
"""

LINE_VERT = """
#version 330 core
layout(location = 0) in vec3 a_pos;
uniform mat4 u_view_proj;
void main() { gl_Position = u_view_proj * vec4(a_pos, 1.0); }
"""

LINE_FRAG = """
#version 330 core
uniform vec4 u_colour;
out vec4 frag;
void main() { frag = u_colour; }
"""

BACKDROP_VERT = """
#version 330 core
const vec2 corners[3] = vec2[3](vec2(-1.0, -1.0), vec2(3.0, -1.0), vec2(-1.0, 3.0));
out vec2 v_uv;
void main() {
    vec2 c = corners[gl_VertexID];
    v_uv = c * 0.5 + 0.5;
    gl_Position = vec4(c, 1.0, 1.0);
}
"""

BACKDROP_FRAG = """
#version 330 core
in vec2 v_uv;
uniform vec3 u_top;
uniform vec3 u_bottom;
out vec4 frag;
void main() { frag = vec4(mix(u_bottom, u_top, smoothstep(0.0, 1.0, v_uv.y)), 1.0); }
"""
