<?php
/**
 * KYC statuses: what each means for the person, and the gate rule. No I/O.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * Pure rules about the bridge's statuses.
 */
final class Status {

	/**
	 * Statuses the bridge reports, in funnel order.
	 *
	 * @var string[]
	 */
	const ALL = array( 'not_started', 'created', 'pending', 'completed', 'needs_review', 'approved', 'declined', 'failed', 'expired' );

	/**
	 * Verification levels, weakest first.
	 *
	 * @var array<string, int>
	 */
	const LEVEL_RANK = array(
		'basic'    => 1,
		'enhanced' => 2,
	);

	/**
	 * What to tell the person about a status, and whether they may (re)start a verification.
	 *
	 * @param string    $status    Bridge status.
	 * @param bool|null $may_retry The bridge's retry rule for a declined, failed or expired
	 *                             verification ([onboarding.retry]); null: the plugin's default.
	 * @return array{label: string, message: string, can_start: bool, button: string}
	 */
	public static function describe( $status, $may_retry = null ) {
		$start    = __( 'Verify identity', 'kyc-bridge' );
		$continue = __( 'Continue verification', 'kyc-bridge' );
		$retry    = __( 'Try again', 'kyc-bridge' );
		switch ( $status ) {
			case 'not_started':
				return self::row( __( 'Not verified', 'kyc-bridge' ), __( 'You have not verified your identity yet.', 'kyc-bridge' ), true, $start );
			case 'created':
			case 'pending':
				return self::row( __( 'In progress', 'kyc-bridge' ), __( 'Your verification has started but is not finished.', 'kyc-bridge' ), true, $continue );
			case 'completed':
			case 'needs_review':
				return self::row( __( 'Checking', 'kyc-bridge' ), __( 'We are checking your documents. This page shows the result once the check is done.', 'kyc-bridge' ), false, '' );
			case 'approved':
				return self::row( __( 'Verified', 'kyc-bridge' ), __( 'Your identity is verified.', 'kyc-bridge' ), false, '' );
			case 'declined':
				if ( true === $may_retry ) {
					return self::row( __( 'Declined', 'kyc-bridge' ), __( 'Your verification was declined. You can try again.', 'kyc-bridge' ), true, $retry );
				}
				return self::row( __( 'Declined', 'kyc-bridge' ), __( 'Your verification was declined. Please contact us.', 'kyc-bridge' ), false, '' );
			case 'failed':
			case 'expired':
				if ( false === $may_retry ) {
					return self::row( __( 'Not finished', 'kyc-bridge' ), __( 'Your last verification did not complete. Please contact us.', 'kyc-bridge' ), false, '' );
				}
				return self::row( __( 'Not finished', 'kyc-bridge' ), __( 'Your last verification did not complete. You can try again.', 'kyc-bridge' ), true, $retry );
			default:
				return self::row( __( 'Unknown', 'kyc-bridge' ), __( 'We cannot tell your verification status right now.', 'kyc-bridge' ), false, '' );
		}
	}

	/**
	 * describe() for a bridge answer: its status and, when the bridge sends it, its retry rule; a
	 * person who withdrew consent is told that their verification no longer counts.
	 *
	 * @param array $answer The bridge's KYC lookup answer.
	 * @return array{label: string, message: string, can_start: bool, button: string}
	 */
	public static function describe_answer( $answer ) {
		if ( ! empty( $answer['consent_withdrawn'] ) ) {
			// The bridge's rule (bridge/kyc/standing.py): a withdrawal ends verified standing until the
			// person consents and verifies again; it answers not_started, this says why.
			return self::row( __( 'Consent withdrawn', 'kyc-bridge' ), __( 'You withdrew your consent, so your identity verification no longer counts here. Verify again to regain access.', 'kyc-bridge' ), true, __( 'Verify again', 'kyc-bridge' ) );
		}
		if ( isset( $answer['status'] ) && 'expired' === $answer['status'] && ! empty( $answer['lapsed'] ) ) {
			// An approval past its renewal deadline ([user_types.X] reverify_after_days): not a failed attempt.
			return self::row( __( 'Renewal needed', 'kyc-bridge' ), __( 'Your identity verification has lapsed. Verify again to keep access.', 'kyc-bridge' ), true, __( 'Verify again', 'kyc-bridge' ) );
		}
		$may_retry = isset( $answer['may_retry'] ) && is_bool( $answer['may_retry'] ) ? $answer['may_retry'] : null;
		return self::describe( isset( $answer['status'] ) ? (string) $answer['status'] : '', $may_retry );
	}

	/**
	 * One description.
	 *
	 * @param string $label     Short label.
	 * @param string $message   Sentence for the person.
	 * @param bool   $can_start Whether the verify button is offered.
	 * @param string $button    Button text.
	 * @return array{label: string, message: string, can_start: bool, button: string}
	 */
	private static function row( $label, $message, $can_start, $button ) {
		return array(
			'label'     => $label,
			'message'   => $message,
			'can_start' => $can_start,
			'button'    => $button,
		);
	}

	/**
	 * Whether a bridge answer passes a gate.
	 *
	 * @param array $answer The bridge's {status, user_type, level} for the person.
	 * @param array $args   {status: required status (default approved), type: user type or '', level: minimum level or ''}.
	 * @return bool
	 */
	public static function passes( $answer, $args ) {
		$args = self::gate_args( $args );
		if ( ! is_array( $answer ) || ! isset( $answer['status'] ) || $answer['status'] !== $args['status'] ) {
			return false;
		}
		if ( '' !== $args['type'] && ( ! isset( $answer['user_type'] ) || $answer['user_type'] !== $args['type'] ) ) {
			return false;
		}
		if ( '' !== $args['level'] ) {
			$have = isset( $answer['level'], self::LEVEL_RANK[ $answer['level'] ] ) ? self::LEVEL_RANK[ $answer['level'] ] : 0;
			$need = isset( self::LEVEL_RANK[ $args['level'] ] ) ? self::LEVEL_RANK[ $args['level'] ] : PHP_INT_MAX;
			if ( $have < $need ) {
				return false;
			}
		}
		return true;
	}

	/**
	 * Normalised gate arguments; unknown values make the gate impossible to pass (fail closed).
	 *
	 * @param array $args Raw arguments.
	 * @return array{status: string, type: string, level: string}
	 */
	public static function gate_args( $args ) {
		$args   = wp_parse_args(
			is_array( $args ) ? $args : array(),
			array(
				'status' => 'approved',
				'type'   => '',
				'level'  => '',
			)
		);
		$status = sanitize_key( (string) $args['status'] );
		$type   = sanitize_key( (string) $args['type'] );
		$level  = sanitize_key( (string) $args['level'] );
		return array(
			'status' => in_array( $status, self::ALL, true ) ? $status : 'approved',
			'type'   => $type,
			'level'  => $level,
		);
	}
}
