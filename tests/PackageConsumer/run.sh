#!/usr/bin/env bash
# Package-consumer test: restores the FastKernelAttention .nupkg from a local folder into a fresh console project (outside
# the repository, so none of its build settings apply), builds it for net10.0 and net8.0, and runs one Attention.Forward
# call on net10.0 (the net8.0 build is checked to compile against the package's lib/net8.0 assembly; it runs too when
# a .NET 8 runtime is installed).
# Usage: tests/PackageConsumer/run.sh [package-folder]   (default: artifacts/packages, made by dotnet pack)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
packages=$(cd "${1:-$repo/artifacts/packages}" && pwd)
package=$(ls "$packages"/FastKernelAttention.[0-9]*.nupkg 2>/dev/null | grep -v '\.symbols\.' | sort -V | tail -n 1 || true)
if [ -z "$package" ]; then
  echo "package consumer: no FastKernelAttention.<version>.nupkg in $packages (run dotnet pack first)" >&2
  exit 1
fi
version=$(basename "$package" .nupkg); version=${version#FastKernelAttention.}
echo "package consumer: $(basename "$package") from $packages"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A fresh copy of this version, not one cached by an earlier run.
global_packages=$(dotnet nuget locals global-packages --list | sed -E 's/^[^:]*: *//')
rm -rf "$global_packages/fastkernelattention/$version"

# The local folder is added to the machine's configured sources (no <clear/>, no registry named here).
cat > "$work/NuGet.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="fastkernelattention-local" value="$packages" />
  </packageSources>
</configuration>
XML
# Empty Directory.Build.props / Directory.Packages.props stop MSBuild from looking further up (e.g. in /tmp's parents).
echo '<Project />' > "$work/Directory.Build.props"
echo '<Project />' > "$work/Directory.Packages.props"
cat > "$work/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFrameworks>net10.0;net8.0</TargetFrameworks>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <UseAppHost>false</UseAppHost>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="FastKernelAttention" Version="[$version]" />
  </ItemGroup>
</Project>
XML
cat > "$work/Program.cs" <<'CS'
using System;
using CommunityToolkit.HighPerformance;
using FastKernelAttention;

// MATH.md section 1: q = (1, 0), keys (1, 0) and (0, 1), V = I, scale 1 -> O = (0.731059, 0.268941), LSE = 1.313262.
float[] q = { 1, 0 }, k = { 1, 0, 0, 1 }, v = { 1, 0, 0, 1 }, o = new float[2], lse = new float[1];
Attention.Forward(new ReadOnlySpan2D<float>(q, 1, 2), new ReadOnlySpan2D<float>(k, 2, 2), new ReadOnlySpan2D<float>(v, 2, 2),
    new Span2D<float>(o, 1, 2), new AttentionOptions { Scale = 1 }, lse);
bool ok = Math.Abs(o[0] - 0.731059) < 1e-5 && Math.Abs(o[1] - 0.268941) < 1e-5 && Math.Abs(lse[0] - 1.313262) < 1e-5;
Console.WriteLine($"{System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}, {Attention.ActiveIsa}: O = ({o[0]:F6}, {o[1]:F6}), LSE = {lse[0]:F6} -> {(ok ? "ok" : "WRONG")}");
return ok ? 0 : 1;
CS

cd "$work"
dotnet restore Consumer.csproj   # NuGet.config here adds to the user and machine configuration
dotnet build Consumer.csproj -c Release --no-restore
for tfm in net10.0 net8.0; do
  grep -q "\"lib/$tfm/FastKernelAttention.dll\"" obj/project.assets.json \
    || { echo "package consumer: $tfm did not resolve lib/$tfm/FastKernelAttention.dll from the package" >&2; exit 1; }
  echo "package consumer: $tfm builds against lib/$tfm/FastKernelAttention.dll"
done
passed=1
dotnet bin/Release/net10.0/Consumer.dll || passed=0
if dotnet --list-runtimes | grep -q '^Microsoft.NETCore.App 8\.'; then
  dotnet bin/Release/net8.0/Consumer.dll || passed=0
else
  echo "package consumer: no .NET 8 runtime installed: net8.0 built, not run"
fi
if [ "$passed" = 1 ]; then echo "package consumer: passed"; else echo "package consumer: FAILED"; exit 1; fi
